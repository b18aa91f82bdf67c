// Organizations: /organization/* through the directory helper. Their budget lives in the budget
// row each links to (litellm_budget_table).
"use strict";
(() => {
  const { api, el, fmt, badge } = gh;
  const budget = (row, name) => row.litellm_budget_table ? row.litellm_budget_table[name] : null;
  const ROLES = [["internal_user", "internal_user"], ["internal_user_viewer", "internal_user_viewer"],
                 ["org_admin", "org_admin"]];

  gh.directory({
    noun: "organization",
    label: (o) => o.organization_alias || o.organization_id,
    search: "Search organizations",
    columns: [
      { label: "Organization", value: (o) => o.organization_alias },
      { label: "Id", value: (o) => el("code", { text: o.organization_id }), class: "hide-narrow" },
      { label: "Teams", value: (o) => fmt.num(o.teams.length), num: true },
      { label: "Members", value: (o) => fmt.num(o.members.length), num: true },
      { label: "Spend / budget", value: (o) => fmt.budget(o.spend, budget(o, "max_budget")), num: true },
      { label: "Models", value: (o) => fmt.list(o.models), class: "hide-narrow" },
    ],
    list: () => api("GET", "/organization/list"),
    fields: [
      { name: "organization_alias", label: "Name", required: true },
      { name: "organization_id", label: "Organization id", fixed: true, hint: "Left empty, one is made up" },
      { name: "models", label: "Models", type: "list", hint: "Comma separated; empty allows every model" },
      { name: "max_budget", label: "Max budget (USD)", type: "number", get: (o) => budget(o, "max_budget") },
      { name: "budget_duration", label: "Budget resets every", hint: "e.g. 30d, 1mo", get: (o) => budget(o, "budget_duration") },
      { name: "tpm_limit", label: "Tokens per minute", type: "number", get: (o) => budget(o, "tpm_limit") },
      { name: "rpm_limit", label: "Requests per minute", type: "number", get: (o) => budget(o, "rpm_limit") },
    ],
    create: (body) => api("POST", "/organization/new", { body }),
    update: (org, body) => api("PATCH", "/organization/update", { body: { ...body, organization_id: org.organization_id } }),
    remove: (org) => api("DELETE", "/organization/delete", { body: { organization_ids: [org.organization_id] } }),
    removeWarning: "Its teams and their keys are deleted with it.",
    async info(org) {
      const row = await api("GET", "/organization/info", { query: { organization_id: org.organization_id } });
      return {
        row,
        pairs: [
          ["Id", el("code", { text: row.organization_id })],
          ["Models", row.models.length ? fmt.list(row.models) : "every model"],
          ["Spend / budget", fmt.budget(row.spend, budget(row, "max_budget"))],
          ["Budget resets every", budget(row, "budget_duration")],
          ["Limits", `${fmt.num(budget(row, "tpm_limit"))} tokens/min · ${fmt.num(budget(row, "rpm_limit"))} requests/min`],
          ["Teams", row.teams.length ? row.teams.map((t) => t.team_alias || t.team_id).join(", ") : null],
          ["Created", fmt.date(row.created_at)],
        ],
        members: row.members,
      };
    },
    members: {
      label: (m) => m.user_id,
      columns: [
        { label: "User", value: (m) => m.user_id },
        { label: "Role", value: (m) => badge(m.user_role, m.user_role === "org_admin" ? "info" : null) },
        { label: "Spend / budget here", value: (m) => fmt.budget(m.spend, budget(m, "max_budget")) },
      ],
      fields: [
        { name: "user_id", label: "User id", fixed: true },
        { name: "user_email", label: "Email", createOnly: true },
        { name: "role", label: "Role", type: "select", options: ROLES, get: (m) => m.user_role },
        { name: "max_budget_in_organization", label: "Their budget here (USD)", type: "number",
          get: (m) => budget(m, "max_budget") },
      ],
      add: (org, { max_budget_in_organization, ...member }) => api("POST", "/organization/member_add",
        { body: { organization_id: org.organization_id, member, max_budget_in_organization } }),
      update: (org, m, body) => api("PATCH", "/organization/member_update",
        { body: { ...body, organization_id: org.organization_id, user_id: m.user_id } }),
      remove: (org, m) => api("DELETE", "/organization/member_delete",
        { body: { organization_id: org.organization_id, user_id: m.user_id } }),
    },
  });
})();
