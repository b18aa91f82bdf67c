// Keys: the virtual keys the viewer may read (GET /key/list), each opening its record
// (GET /key/info); create, edit, block, regenerate and delete through the /key/* routes. A new
// secret is shown once, in its own dialog, and dropped from the page when that closes.
"use strict";
(() => {
  const { api, el, fmt, table, dialog, details, badge, viewer } = gh;
  const filters = document.getElementById("key-filters");
  const editor = dialog("key-edit");
  const shown = dialog("key-details");
  const secret = dialog("key-secret");
  const detailsError = document.getElementById("key-details-error");
  // Only a proxy admin gives a key to someone else; the API makes anyone else's keys theirs.
  const choosesOwner = viewer.role === "proxy_admin";
  let editing = null; // {token, before} while the form edits a key; null while it creates one

  function status(key) {
    if (key.blocked) return badge("Blocked", "bad");
    if (key.expires && new Date(key.expires) < new Date()) return badge("Expired", "warn");
    return badge("Active", "ok");
  }
  const limits = (key) => key.tpm_limit === null && key.rpm_limit === null ? "—"
    : `${fmt.num(key.tpm_limit)} tpm / ${fmt.num(key.rpm_limit)} rpm`;
  const models = (key) => key.models && key.models.length ? key.models.join(", ") : "All models";
  const guardrails = (key) => (key.metadata || {}).guardrails || null;
  const json = (value) => el("pre", { text: JSON.stringify(value || {}, null, 2) });

  const rows = table(document.getElementById("key-table"), {
    columns: [
      { label: "Alias", value: (k) => k.key_alias },
      { label: "Key", value: (k) => el("code", { text: k.key_name }) },
      { label: "Team", value: (k) => k.team_id, class: "hide-narrow" },
      { label: "User", value: (k) => k.user_id, class: "hide-narrow" },
      { label: "Models", value: models, class: "hide-narrow" },
      { label: "Spend / budget", value: (k) => fmt.budget(k.spend, k.max_budget), num: true },
      { label: "Limits", value: limits, class: "hide-narrow" },
      { label: "Expires", value: (k) => k.expires ? fmt.date(k.expires) : "Never", class: "hide-narrow" },
      { label: "Status", value: status },
    ],
    async load({ page, pageSize }) {
      const query = { ...gh.formData(filters), page, size: pageSize, return_full_object: true };
      const answer = await api("GET", "/key/list", { query });
      return { rows: answer.keys, total: answer.total_count };
    },
    pageSize: 20,
    onRow: (key) => openDetails(key.token),
    empty: "No keys match.",
  });
  filters.addEventListener("submit", (event) => { event.preventDefault(); rows.first(); });
  filters.addEventListener("reset", () => setTimeout(rows.first));

  // Teams the viewer may pick, as suggestions for the team fields.
  api("GET", "/team/list", { query: viewer.readsEverything ? {} : { user_id: viewer.user } })
    .then((teams) => document.getElementById("key-teams").replaceChildren(
      ...teams.map((t) => el("option", { value: t.team_id, label: t.team_alias || t.team_id }))))
    .catch(() => {}); // only suggestions: the field takes any id

  // --- details -------------------------------------------------------------------------------
  let current = null;
  // Until a key's record answers its dialog stays shut, so another row can be clicked meanwhile;
  // once closed, what a refresh still on its way would show is for a dialog no one looks at.
  const detailsTurn = gh.newest(document.getElementById("key-details-body"));
  shown.node.addEventListener("close", detailsTurn.drop);

  // refresh: the dialog is open already (after Block, say), and stays shut if closed meanwhile.
  async function openDetails(token, { refresh = false } = {}) {
    detailsError.hidden = true;
    try {
      await detailsTurn(() => api("GET", "/key/info", { query: { key: token } }),
                        (answer) => showDetails(answer, refresh));
    } catch (error) { gh.failed(error); }
  }

  function showDetails(answer, refresh) {
    current = { ...answer.info, token: answer.key };
    const key = current;
    document.getElementById("key-details-title").textContent = key.key_alias || key.key_name;
    document.getElementById("key-details-body").replaceChildren(details([
      ["Key", el("code", { text: key.key_name })],
      ["Hash", el("code", { text: key.token })],
      ["Status", status(key)],
      ["Team", key.team_id], ["User", key.user_id], ["Models", models(key)],
      ["Spend / budget", fmt.budget(key.spend, key.max_budget)],
      ["Budget resets", key.budget_duration ? `every ${key.budget_duration}, next ${fmt.date(key.budget_reset_at)}` : null],
      ["Limits", limits(key)],
      ["Parallel requests", key.max_parallel_requests === null ? null : fmt.num(key.max_parallel_requests)],
      ["Expires", key.expires ? fmt.date(key.expires) : "Never"],
      ["Guardrails", fmt.list(guardrails(key))],
      ["Permissions", json(key.permissions)],
      ["Metadata", json(key.metadata)],
      ["Created", `${fmt.date(key.created_at)} by ${key.created_by || "—"}`],
      ["Updated", `${fmt.date(key.updated_at)} by ${key.updated_by || "—"}`],
    ]));
    const block = document.getElementById("key-do-block");
    if (block) block.textContent = key.blocked ? "Unblock" : "Block";
    if (!refresh && !shown.node.open) shown.node.showModal();
  }

  async function act(run) {
    detailsError.hidden = true;
    try { await run(); } catch (error) {
      detailsError.textContent = error.message;
      detailsError.hidden = false;
    }
  }

  function showSecret(value, message) {
    const box = document.getElementById("key-secret-box");
    box.replaceChildren(el("code", { id: "key-secret-value", text: value }), gh.copyButton(value, "Copy key"));
    secret.node.addEventListener("close", () => box.replaceChildren(), { once: true });
    secret.open();
    gh.notice(message);
  }

  if (viewer.canEdit) {
    document.getElementById("key-do-block").addEventListener("click", () => act(async () => {
      await api("POST", current.blocked ? "/key/unblock" : "/key/block", { body: { key: current.token } });
      gh.notice(`Key ${current.key_alias || current.key_name} ${current.blocked ? "unblocked" : "blocked"}.`);
      rows.reload();
      await openDetails(current.token, { refresh: true });
    }));
    document.getElementById("key-do-regenerate").addEventListener("click", () => act(async () => {
      const name = current.key_alias || current.key_name;
      if (!await gh.confirm(`Regenerate ${name}? Its current secret stops working at once.`,
                            { action: "Regenerate", danger: true })) return;
      const made = await api("POST", "/key/regenerate", { body: { key: current.token } });
      shown.close();
      rows.reload();
      showSecret(made.key, `Key ${name} regenerated.`);
    }));
    document.getElementById("key-do-delete").addEventListener("click", () => act(async () => {
      const name = current.key_alias || current.key_name;
      if (!await gh.confirm(`Delete ${name}? Calls with it are refused from now on.`,
                            { action: "Delete", danger: true })) return;
      await api("POST", "/key/delete", { body: { keys: [current.token] } });
      shown.close();
      gh.notice(`Key ${name} deleted.`);
      rows.reload();
    }));
    document.getElementById("key-do-edit").addEventListener("click", () => {
      const key = current;
      // Guardrails have their own field: the metadata box shows the rest.
      const metadata = { ...key.metadata };
      delete metadata.guardrails;
      const before = {
        key_alias: key.key_alias, models: key.models, team_id: key.team_id, user_id: key.user_id,
        max_budget: key.max_budget, budget_duration: key.budget_duration,
        tpm_limit: key.tpm_limit, rpm_limit: key.rpm_limit, duration: "",
        guardrails: guardrails(key), permissions: key.permissions, metadata,
      };
      editing = { token: key.token, before };
      shown.close();
      openEditor(`Edit ${key.key_alias || key.key_name}`, "Save",
                 "A new lifetime from now; empty: the expiry stays as it is.", before);
    });
    document.getElementById("key-create").addEventListener("click", () => {
      editing = null;
      openEditor("Create key", "Create key", "e.g. 12h, 30d; empty: never expires.",
                 { user_id: choosesOwner ? "" : viewer.user });
    });
  }

  // --- the create / edit form ----------------------------------------------------------------
  const ownerField = editor.form.elements.namedItem("user_id");
  ownerField.disabled = !choosesOwner;
  document.getElementById("key-user-hint").textContent = choosesOwner
    ? "Empty: the key belongs to no user." : "Keys you make are yours.";

  function openEditor(title, submit, durationHint, values) {
    document.getElementById("key-edit-title").textContent = title;
    document.getElementById("key-submit").textContent = submit;
    document.getElementById("key-duration-hint").textContent = durationHint;
    editor.open(values);
  }

  gh.bindForm(editor.form, {
    async submit(body) {
      if (!editing) return api("POST", "/key/generate", { body });
      const changes = gh.formChanges(editor.form, editing.before);
      // Guardrails live inside metadata: new metadata must carry them over.
      if ("metadata" in changes && !("guardrails" in changes) && editing.before.guardrails) {
        changes.guardrails = editing.before.guardrails;
      }
      if (!Object.keys(changes).length) return null;
      return api("POST", "/key/update", { body: { key: editing.token, ...changes } });
    },
    async done(result) {
      editor.close();
      rows.reload();
      if (!editing) showSecret(result.key, `Key ${result.key_alias || result.key_name} created.`);
      else if (result) gh.notice(`Key ${result.key_alias || result.key_name} saved.`);
    },
  });
})();
