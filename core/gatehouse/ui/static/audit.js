// Audit log: who changed what, with the row before and after, from GET /audit.
"use strict";
(() => {
  const { api, el, fmt, table, dialog, details, badge } = gh;
  const filters = document.getElementById("audit-filters");
  const shown = dialog("audit-row");
  const KINDS = { created: "ok", deleted: "bad", updated: "info" };

  const pretty = (value) => value === null || value === undefined ? "—"
    : JSON.stringify(typeof value === "string" ? safeParse(value) : value, null, 2);
  function safeParse(text) { try { return JSON.parse(text); } catch { return text; } }

  function open(row) {
    document.getElementById("audit-row-summary").replaceChildren(details([
      ["When", fmt.date(row.updated_at)], ["Who", row.changed_by],
      ["Action", badge(row.action, KINDS[row.action])], ["Table", row.table_name],
      ["Object", el("code", { text: row.object_id })]]));
    document.getElementById("audit-before").textContent = pretty(row.before_value);
    document.getElementById("audit-after").textContent = pretty(row.updated_values);
    shown.node.showModal();
  }

  const rows = table(document.getElementById("audit-table"), {
    columns: [
      { label: "When", value: (r) => fmt.date(r.updated_at) },
      { label: "Who", value: (r) => r.changed_by },
      { label: "Action", value: (r) => badge(r.action, KINDS[r.action]) },
      { label: "Table", value: (r) => r.table_name, class: "hide-narrow" },
      { label: "Object", value: (r) => el("code", { text: r.object_id }) },
    ],
    async load({ page, pageSize }) {
      const query = { ...gh.formData(filters), page, page_size: pageSize };
      const answer = await api("GET", "/audit", { query });
      return { rows: answer.audit_logs, total: answer.total };
    },
    pageSize: 25,
    onRow: open,
    empty: "No changes recorded. Audit rows are kept with litellm_settings.store_audit_logs: true.",
  });
  filters.addEventListener("submit", (event) => { event.preventDefault(); rows.first(); });
})();
