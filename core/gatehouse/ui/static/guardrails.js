// Guardrails: every served guardrail (GET /v2/guardrails/list) with its verdict counts over a
// period (GET /guardrails/usage), add/edit/delete of the database's guardrails (POST /guardrails,
// PUT/DELETE /guardrails/{id}), and a playground (POST /guardrails/apply_guardrail).
"use strict";
(() => {
  const { api, el, fmt, badge, table, dialog, bindForm, failed, notice, confirm } = gh;
  // Only proxy admins manage guardrails (the API refuses everyone else).
  const manages = gh.viewer.role === "proxy_admin";
  // Params with a field of their own in the form; the others are edited as JSON.
  const OWN_FIELDS = ["guardrail", "mode", "default_on", "enforce", "shadow_of", "cache_ttl",
                      "latency_budget_ms"];
  const period = document.getElementById("guardrail-period");
  const usageNote = document.getElementById("guardrail-usage-note");
  const editor = dialog("guardrail-edit");
  const playground = document.getElementById("playground");
  const verdict = document.getElementById("verdict");
  let editing = null;  // the guardrail the dialog replaces; null: a new one

  const modes = (mode) => (Array.isArray(mode) ? mode : mode ? [mode] : []);
  const count = (key) => (row) => (row.usage ? fmt.num(row.usage[key]) : "—");

  // Where the guardrail is defined, and the options that change how it acts.
  function setup(row) {
    const params = row.litellm_params;
    const shown = [where(row)];
    if (params.default_on) shown.push(badge("default on", "ok"));
    if (params.enforce === false) shown.push(badge("monitor only", "warn"));
    if (params.shadow_of) shown.push(badge(`shadow of ${params.shadow_of}`, "info"));
    if (params.cache_ttl) shown.push(badge(`cache ${params.cache_ttl}s`));
    if (params.latency_budget_ms) shown.push(badge(`budget ${params.latency_budget_ms} ms`));
    return el("span", { class: "badges" }, shown);
  }

  function kind(params) {
    if (!params.guardrail) return "";
    return el("span", null, params.guardrail,
              el("span", { class: "modes", text: fmt.list(modes(params.mode)) }));
  }

  function hitRate(row) {
    const u = row.usage;
    if (!u || u.cache_hit_rate === null) return "—";
    return el("span", { title: `${fmt.num(u.cache_hits)} of ${fmt.num(u.cache_hits + u.cache_misses)} texts from the cache` },
              `${Math.round(u.cache_hit_rate * 100)}% (${fmt.num(u.cache_hits)}/${fmt.num(u.cache_hits + u.cache_misses)})`);
  }

  function where(row) {
    if (row.guardrail_definition_location === "db") return badge("database", "info");
    if (row.guardrail_definition_location === "config") return badge("config file");
    return badge("no longer served", "warn");
  }

  function rowActions(row) {
    if (!manages || row.guardrail_definition_location !== "db") return null;
    return el("span", { class: "item-actions" },
      el("button", { type: "button", text: "Edit", "aria-label": `Edit ${row.guardrail_name}`,
                     onclick: () => openEditor(row) }),
      el("button", { type: "button", class: "danger", text: "Delete",
                     "aria-label": `Delete ${row.guardrail_name}`, onclick: () => remove(row) }));
  }

  async function listed() {
    try {
      return (await api("GET", "/v2/guardrails/list")).guardrails;
    } catch (error) {
      if (error.status !== 500) throw error;
      // No database: only the config file's guardrails, which the page cannot change.
      document.getElementById("guardrail-add")?.remove();
      const { guardrails } = await api("GET", "/guardrails/list");
      return guardrails.map((g) => ({ ...g, guardrail_definition_location: "config" }));
    }
  }

  async function usage() {
    const seconds = Number(period.elements.period.value);
    const now = Date.now();
    try {
      const answer = await api("GET", "/guardrails/usage", { query: {
        start_date: new Date(now - seconds * 1000).toISOString(),
        end_date: new Date(now + 1000).toISOString() } });
      usageNote.hidden = true;
      return new Map(answer.guardrails.map((u) => [u.guardrail_name, u]));
    } catch (error) {
      if (error.status !== 401 && error.status !== 403) throw error;
      usageNote.textContent = "Verdict counts are shown to proxy admins and their viewers.";
      usageNote.hidden = false;
      return null;
    }
  }

  // The table drops an older load that answers late; the playground's list must drop it too.
  const listTurn = gh.newest();
  function load() {
    return listTurn(() => Promise.all([listed(), usage()]), shownList);
  }

  function shownList([guardrails, counts]) {
    const rows = guardrails.map((g) => ({ ...g, usage: counts && (counts.get(g.guardrail_name) || emptyUsage()) }));
    const served = new Set(guardrails.map((g) => g.guardrail_name));
    for (const [name, u] of counts || []) {
      if (!served.has(name)) rows.push({ guardrail_name: name, litellm_params: {}, usage: u });
    }
    fillPlayground(guardrails);
    return { rows, total: rows.length };
  }

  function emptyUsage() {
    return { runs: 0, success: 0, guardrail_intervened: 0, would_have_intervened: 0,
             guardrail_failed_to_respond: 0, not_run: 0, shadow_disagreements: 0,
             cache_hits: 0, cache_misses: 0, cache_hit_rate: null, avg_duration_ms: null };
  }

  const rows = table(document.getElementById("guardrail-table"), {
    columns: [
      { label: "Name", value: (r) => el("span", null, el("strong", { class: "nowrap", text: r.guardrail_name }), rowActions(r)) },
      { label: "Type and modes", value: (r) => kind(r.litellm_params) },
      { label: "Setup", value: setup, class: "hide-narrow" },
      { label: "Runs", value: count("runs"), num: true },
      { label: "Passed", value: count("success"), num: true },
      { label: "Intervened", value: count("guardrail_intervened"), num: true },
      { label: "Would have", value: count("would_have_intervened"), num: true },
      { label: "Failed", value: count("guardrail_failed_to_respond"), num: true },
      { label: "Not run", value: count("not_run"), num: true, class: "hide-narrow" },
      { label: "Disagreed", value: count("shadow_disagreements"), num: true, class: "hide-narrow" },
      { label: "Cache hits", value: hitRate, num: true },
      { label: "Avg ms", value: (r) => (r.usage && r.usage.avg_duration_ms !== null ? r.usage.avg_duration_ms.toFixed(1) : "—"), num: true, class: "hide-narrow" },
    ],
    load,
    pageSize: 1000,
    empty: "No guardrails are configured.",
  });
  period.addEventListener("submit", (event) => { event.preventDefault(); rows.reload(); });
  period.elements.period.addEventListener("change", () => rows.reload());

  // --- add, edit, delete -----------------------------------------------------------------------

  function openEditor(row) {
    editing = row;
    document.getElementById("guardrail-edit-title").textContent = row ? `Edit ${row.guardrail_name}` : "Add guardrail";
    if (!row) { editor.open(); return; }
    const params = row.litellm_params;
    const rest = Object.fromEntries(Object.entries(params).filter(([name]) => !OWN_FIELDS.includes(name)));
    editor.open({
      guardrail_name: row.guardrail_name, guardrail: params.guardrail, mode: modes(params.mode),
      shadow_of: params.shadow_of, cache_ttl: params.cache_ttl, latency_budget_ms: params.latency_budget_ms,
      default_on: Boolean(params.default_on), enforce: params.enforce !== false,
      params: Object.keys(rest).length ? rest : null, guardrail_info: row.guardrail_info || null,
    });
  }

  function body(values) {
    const params = { ...(values.params || {}), guardrail: values.guardrail, default_on: values.default_on };
    if (values.mode) params.mode = values.mode;
    if (!values.enforce) params.enforce = false;
    for (const name of ["shadow_of", "cache_ttl", "latency_budget_ms"]) {
      if (values[name] !== undefined) params[name] = values[name];
    }
    return { guardrail: { guardrail_name: values.guardrail_name, litellm_params: params,
                          guardrail_info: values.guardrail_info || null } };
  }

  async function remove(row) {
    if (!await confirm(`Delete the guardrail ${row.guardrail_name}? Calls stop running it at once.`, { action: "Delete", danger: true })) return;
    try {
      await api("DELETE", `/guardrails/${encodeURIComponent(row.guardrail_id)}`);
      notice(`Deleted ${row.guardrail_name}.`);
      rows.reload();
    } catch (error) { failed(error); }
  }

  const add = document.getElementById("guardrail-add");
  if (add) add.addEventListener("click", () => openEditor(null));
  bindForm(editor.form, {
    submit: (values) => (editing
      ? api("PUT", `/guardrails/${encodeURIComponent(editing.guardrail_id)}`, { body: body(values) })
      : api("POST", "/guardrails", { body: body(values) })),
    done: (saved) => {
      editor.close();
      notice(`Saved ${saved.guardrail_name}; calls run it from now on.`);
      rows.reload();
    },
  });

  // --- playground -----------------------------------------------------------------------------

  function fillPlayground(guardrails) {
    const select = playground.elements.guardrail_name;
    const chosen = select.value;
    const types = document.getElementById("guardrail-types");
    select.replaceChildren(...guardrails.map((g) => el("option", { value: g.guardrail_name, text: g.guardrail_name })));
    if (guardrails.some((g) => g.guardrail_name === chosen)) select.value = chosen;
    const kinds = [...new Set(guardrails.map((g) => g.litellm_params.guardrail).filter(Boolean))];
    types.replaceChildren(...kinds.map((kind) => el("option", { value: kind })));
  }

  function show(kind, label, message, text) {
    verdict.replaceChildren(el("p", null, badge(label, kind), " ", message),
                            text === undefined ? "" : el("pre", { class: "rewritten", text }));
  }

  bindForm(playground, {
    async submit(values) {
      verdict.replaceChildren();
      try {
        const answer = await api("POST", "/guardrails/apply_guardrail", { body: values });
        if (answer.error) {  // a guardrail that answers the call itself
          show("bad", "Blocked", answer.error.message || "");
        } else if (answer.response_text === values.text) {
          show("ok", "Passed", "The guardrail let the text through unchanged.");
        } else {
          show("warn", "Rewritten", "The guardrail let the text through rewritten:", answer.response_text);
        }
      } catch (error) {
        if (error.kind !== "guardrail_violation") throw error;
        show("bad", "Blocked", error.message);
      }
    },
  });
})();
