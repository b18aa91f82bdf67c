// Logs: the request log from GET /spend/logs/ui, filtered and paged by the database; a row
// opens the call (GET /spend/logs/ui/{id}) with its timings, tokens, cost, error and every
// guardrail's record. Keys show as their alias or a shortened hash, never as the key.
"use strict";
(() => {
  const { api, el, fmt, table, dialog, details, badge } = gh;
  const filters = document.getElementById("logs-filters");
  const shown = dialog("log-call");

  // guardrail_status -> [label, badge kind]
  const VERDICTS = {
    success: ["passed", "ok"],
    guardrail_intervened: ["intervened", "bad"],
    would_have_intervened: ["would have intervened", "warn"],
    guardrail_failed_to_respond: ["failed to respond", "bad"],
    not_run: ["not run", ""],
  };
  const verdict = (status) => badge(...(VERDICTS[status] || [status, ""]));
  const statusBadge = (row) => badge(row.status, row.status === "success" ? "ok" : "bad");
  const shortHash = (hash) => hash ? `${hash.slice(0, 6)}…${hash.slice(-4)}` : null;
  const keyLabel = (row) => row.api_key_alias || shortHash(row.api_key);
  const ms = (seconds) => seconds === null || seconds === undefined ? null : `${fmt.num(Math.round(seconds * 1000))} ms`;
  const between = (from, to) => from && to ? ms((Date.parse(to) - Date.parse(from)) / 1000) : null;
  const runs = (row) => (row.metadata && row.metadata.guardrail_information) || [];

  // The guardrails worth a glance in the list: those that did more than pass, and shadows
  // that disagreed with the guardrail they shadow (passing where it blocked, too).
  function verdicts(row) {
    const telling = runs(row).filter((run) => run.guardrail_status !== "success" || run.verdicts_differ);
    return telling.length ? el("span", { class: "verdicts" }, telling.map((run) =>
      el("span", null, run.guardrail_name, " ", verdict(run.guardrail_status),
        run.verdicts_differ ? [" ", badge("disagrees", "warn")] : null))) : null;
  }

  // A local datetime-local value as the UTC time the API compares with.
  function utc(value) { return value ? new Date(value).toISOString() : null; }

  function query() {
    const values = gh.formData(filters);
    return { ...values, start_date: utc(values.start_date), end_date: utc(values.end_date) };
  }

  function masked(counts) {
    const entries = Object.entries(counts || {});
    return entries.length ? entries.map(([entity, n]) => `${entity}: ${n}`).join(", ") : null;
  }

  // What a run's record says besides LiteLLM's fields: why, and how it was enforced.
  function notes(run) {
    const out = [];
    if (run.status_reason) out.push(run.status_reason);
    if (run.shadow_of) {
      out.push(`shadow of ${run.shadow_of}` + (run.verdicts_differ
        ? ` — disagrees: this one ${run.verdict}, ${run.shadow_of} ${run.target_verdict}` : ""));
    } else if (run.enforced === false) out.push("monitor only (enforce: false)");
    if (run.latency_budget === "demote") out.push("demoted past its latency budget: finished off the request path, not enforced");
    if (run.cache) out.push(`verdict cache: ${run.cache.hits} hit(s), ${run.cache.misses} miss(es)`);
    return out.join("; ") || null;
  }

  function guardrailTable(list) {
    if (!list.length) return el("p", { class: "empty", text: "No guardrail ran on this call." });
    const head = el("tr", null, ["Guardrail", "Mode", "Verdict", "Duration", "Masked", "Notes"]
      .map((label) => el("th", { scope: "col", text: label })));
    const rows = list.map((run) => el("tr", null,
      el("td", { text: run.guardrail_name }), el("td", { text: run.guardrail_mode }),
      el("td", null, verdict(run.guardrail_status)),
      el("td", { class: "num", text: run.guardrail_status === "not_run" ? "—" : ms(run.duration) }),
      el("td", { text: masked(run.masked_entity_count) || "—" }),
      el("td", { text: notes(run) || "—" })));
    return el("div", { class: "table-wrap" }, el("table", null, el("thead", null, head), el("tbody", null, rows)));
  }

  function text(value) {
    if (value === null || value === undefined) {
      return el("p", { class: "empty", text: "Not stored. Set general_settings.store_prompts_in_spend_logs: true to keep the text of calls." });
    }
    if (typeof value === "object" && !Object.keys(value).length) {
      return el("p", { class: "empty", text: "None: the call got no reply." });
    }
    return el("pre", { text: typeof value === "string" ? value : JSON.stringify(value, null, 2) });
  }

  // Until a call's record answers its dialog stays shut, so another row can be clicked meanwhile.
  const callTurn = gh.newest(shown.node);
  async function open(row) {
    try {
      await callTurn(() => api("GET", `/spend/logs/ui/${encodeURIComponent(row.request_id)}`), showCall);
    } catch (error) { gh.failed(error); }
  }

  function showCall(call) {
    const error = call.metadata && call.metadata.error_information;
    document.getElementById("log-call-title").textContent = `Call ${call.request_id}`;
    document.getElementById("log-call-summary").replaceChildren(details([
      ["Status", el("span", null, statusBadge(call), error ? ` ${error.error_code} · ${error.error_message || ""}` : "")],
      ["Started", fmt.date(call.startTime)],
      ["Ended", fmt.date(call.endTime)],
      ["Duration", between(call.startTime, call.endTime)],
      ["Time to first token", call.completionStartTime ? between(call.startTime, call.completionStartTime) : "not stored (streams only)"],
      ["Model", call.model],
      ["Key", keyLabel(call)],
      ["Team", call.team_id],
      ["User", call.user],
      ["Tokens", `${fmt.num(call.prompt_tokens)} prompt + ${fmt.num(call.completion_tokens)} completion = ${fmt.num(call.total_tokens)}`],
      ["Cost", fmt.money(call.spend)],
      ["Tags", fmt.list(call.request_tags)],
      ["Reply id", call.response_id],
    ]));
    document.getElementById("log-call-guardrails").replaceChildren(guardrailTable(runs(call)));
    document.getElementById("log-call-request").replaceChildren(text(call.messages));
    document.getElementById("log-call-response").replaceChildren(text(call.response));
    shown.node.showModal();
  }

  const rows = table(document.getElementById("logs-table"), {
    columns: [
      { label: "Time", value: (r) => fmt.date(r.startTime) },
      { label: "Status", value: statusBadge },
      { label: "Key", value: keyLabel },
      { label: "Team", value: (r) => r.team_id, class: "hide-narrow" },
      { label: "Model", value: (r) => r.model },
      { label: "Tokens", value: (r) => fmt.num(r.total_tokens), num: true, class: "hide-narrow" },
      { label: "Cost", value: (r) => fmt.money(r.spend), num: true },
      { label: "Duration", value: (r) => between(r.startTime, r.endTime), num: true, class: "hide-narrow" },
      { label: "Guardrails", value: verdicts },
    ],
    async load({ page, pageSize }) {
      const answer = await api("GET", "/spend/logs/ui", { query: { ...query(), page, page_size: pageSize } });
      return { rows: answer.data, total: answer.total };
    },
    pageSize: 25,
    onRow: open,
    empty: "No calls match. Calls show here a second or so after they end.",
  });
  filters.addEventListener("submit", (event) => { event.preventDefault(); rows.first(); });
})();
