// Models: every deployment the caller may see (GET /model/info) with its prices per million
// tokens, limits, context window and health (GET /health?model_id=, the gateway's last probe),
// and, with store_model_in_db, add/edit/delete (POST /model/new, PATCH /model/{id}/update,
// POST /model/delete). Upstream keys are write-only: the API never returns them.
"use strict";
(() => {
  const { api, el, fmt, badge, table, dialog, bindForm, failed, notice, confirm } = gh;
  const PER_MILLION = 1e6;
  // The page offers "Add model" only where the database keeps models and the viewer may add.
  const add = document.getElementById("model-add");
  const editor = dialog("model-edit");
  // deployment id -> {cell, turn}: a probe asked again (Check health) may answer before the one
  // before it, whose older report must not replace the newer.
  const healthCells = new Map();
  let shown = [];
  let editing = null;  // the deployment the dialog changes; null: a new one

  // Rounded to 12 digits: 2.5e-6 * 1e6 is 2.4999999999999996 in floating point.
  const perMillion = (perToken) => (perToken === null || perToken === undefined ? undefined
    : Number((perToken * PER_MILLION).toPrecision(12)));
  const perToken = (perMillionTokens) => (perMillionTokens === undefined ? undefined : perMillionTokens / PER_MILLION);
  const price = (value) => { const shown = perMillion(value); return shown === undefined ? "—" : fmt.money(shown); };

  function name(row) {
    const stored = row.model_info.db_model;
    return el("span", null,
      el("strong", { class: "nowrap", text: row.model_name }), " ",
      stored ? badge("database", "info") : badge("config file"),
      add && stored ? el("span", { class: "item-actions" },
        el("button", { type: "button", text: "Edit", "aria-label": `Edit ${row.model_name}`, onclick: () => openEditor(row) }),
        el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${row.model_name}`, onclick: () => remove(row) }))
        : null);
  }

  function upstream(row) {
    const params = row.litellm_params;
    return el("span", null, el("code", { text: params.model }),
              params.api_base ? el("span", { class: "modes", text: params.api_base }) : null);
  }

  function health(row) {
    const id = row.model_info.id;
    if (!healthCells.has(id)) {
      const cell = el("span", { class: "health" }, badge("checking…"));
      healthCells.set(id, { cell, turn: gh.newest(cell) });
    }
    return healthCells.get(id);
  }

  async function checkHealth(row) {
    const { cell, turn } = health(row);
    cell.replaceChildren(badge("checking…"));
    try {
      await turn(() => api("GET", "/health", { query: { model_id: row.model_info.id } }), (report) => {
        if (report.healthy_count) cell.replaceChildren(badge("healthy", "ok"));
        else if (report.unhealthy_count) {
          const error = report.unhealthy_endpoints[0].error || "";
          cell.replaceChildren(badge("unhealthy", "bad"), el("span", { class: "modes", text: error }));
        } else cell.replaceChildren(badge("not probed"));  // a wildcard without health_check_model
      });
    } catch (error) {
      cell.replaceChildren(badge("unknown", "warn"), el("span", { class: "modes", text: error.message }));
    }
  }

  const rows = table(document.getElementById("model-table"), {
    columns: [
      { label: "Model", value: name },
      { label: "Upstream", value: upstream, class: "hide-narrow" },
      { label: "Input $/1M", value: (r) => price(r.model_info.input_cost_per_token), num: true },
      { label: "Output $/1M", value: (r) => price(r.model_info.output_cost_per_token), num: true },
      { label: "RPM", value: (r) => fmt.num(r.litellm_params.rpm), num: true, class: "hide-narrow" },
      { label: "TPM", value: (r) => fmt.num(r.litellm_params.tpm), num: true, class: "hide-narrow" },
      { label: "Context", value: (r) => fmt.num(r.model_info.max_input_tokens ?? r.model_info.max_tokens), num: true, class: "hide-narrow" },
      { label: "Health", value: (r) => health(r).cell },
    ],
    async load() {
      shown = (await api("GET", "/model/info")).data;
      shown.forEach(checkHealth);
      return { rows: shown, total: shown.length };
    },
    pageSize: 1000,
    empty: "No models are served.",
  });
  document.getElementById("model-health").addEventListener("click", () => shown.forEach(checkHealth));

  // --- add, edit, delete -----------------------------------------------------------------------

  function openEditor(row) {
    editing = row;
    document.getElementById("model-edit-title").textContent = row ? `Edit ${row.model_name}` : "Add model";
    const nameField = editor.form.elements.model_name;
    nameField.readOnly = Boolean(row);
    if (!row) { editor.open(); return; }
    const params = row.litellm_params, info = row.model_info;
    editor.open({
      model_name: row.model_name, model: params.model, api_base: params.api_base,
      input_price: perMillion(info.input_cost_per_token), output_price: perMillion(info.output_cost_per_token),
      rpm: params.rpm, tpm: params.tpm, max_input_tokens: info.max_input_tokens,
    });
  }

  // The form as the models API takes it; fields left empty keep what is stored.
  function body(values) {
    const params = { model: values.model, api_base: values.api_base, api_key: values.api_key,
                     input_cost_per_token: perToken(values.input_price),
                     output_cost_per_token: perToken(values.output_price),
                     rpm: values.rpm, tpm: values.tpm };
    const info = values.max_input_tokens === undefined ? {} : { max_input_tokens: values.max_input_tokens };
    return { model_name: values.model_name, litellm_params: JSON.parse(JSON.stringify(params)), model_info: info };
  }

  async function remove(row) {
    if (!await confirm(`Delete the model ${row.model_name}? Calls to it fail from now on.`, { action: "Delete", danger: true })) return;
    try {
      await api("POST", "/model/delete", { body: { id: row.model_info.id } });
      notice(`Deleted ${row.model_name}.`);
      rows.reload();
    } catch (error) { failed(error); }
  }

  if (add) {
    add.addEventListener("click", () => openEditor(null));
    bindForm(editor.form, {
      submit: (values) => (editing
        ? api("PATCH", `/model/${encodeURIComponent(editing.model_info.id)}/update`, { body: body(values) })
        : api("POST", "/model/new", { body: body(values) })),
      done: (saved) => {
        editor.close();
        notice(`Saved ${saved.model_name}.`);
        rows.reload();
      },
    });
  }
})();
