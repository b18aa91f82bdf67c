// Internal users: /user/* through the directory helper; /user/list pages and searches itself.
"use strict";
(() => {
  const { api, el, fmt, badge } = gh;
  const ROLES = ["internal_user", "internal_user_viewer", "proxy_admin", "proxy_admin_viewer"];

  gh.directory({
    noun: "user",
    label: (u) => u.user_alias || u.user_id,
    search: "Search by email",
    columns: [
      { label: "User", value: (u) => el("code", { text: u.user_id }) },
      { label: "Email", value: (u) => u.user_email },
      { label: "Role", value: (u) => u.user_role && badge(u.user_role, u.user_role.startsWith("proxy_admin") ? "info" : null) },
      { label: "Teams", value: (u) => fmt.num(u.teams.length), num: true, class: "hide-narrow" },
      { label: "Keys", value: (u) => fmt.num(u.key_count), num: true, class: "hide-narrow" },
      { label: "Spend / budget", value: (u) => fmt.budget(u.spend, u.max_budget), num: true },
    ],
    async list({ page, pageSize, search }) {
      const answer = await api("GET", "/user/list", { query: { page, page_size: pageSize, user_email: search } });
      return { rows: answer.users, total: answer.total };
    },
    fields: [
      { name: "user_id", label: "User id", fixed: true, hint: "Left empty, one is made up" },
      { name: "user_email", label: "Email" },
      { name: "user_alias", label: "Name" },
      { name: "user_role", label: "Role", type: "select", options: ROLES.map((r) => [r, r]) },
      { name: "max_budget", label: "Max budget (USD)", type: "number", hint: "Binds the user's keys that are in no team" },
      { name: "budget_duration", label: "Budget resets every", hint: "e.g. 30d, 1mo" },
      { name: "models", label: "Models", type: "list", hint: "Comma separated; empty allows every model" },
      { name: "tpm_limit", label: "Tokens per minute", type: "number" },
      { name: "rpm_limit", label: "Requests per minute", type: "number" },
      { name: "teams", label: "Teams", type: "list", createOnly: true, hint: "Team ids, comma separated" },
      { name: "auto_create_key", label: "Create a key for the user (shown once)", type: "bool", createOnly: true },
    ],
    create: (body) => api("POST", "/user/new", { body: { auto_create_key: false, ...body } }),
    update: (user, body) => api("POST", "/user/update", { body: { ...body, user_id: user.user_id } }),
    remove: (user) => api("POST", "/user/delete", { body: { user_ids: [user.user_id] } }),
    removeWarning: "Their keys are deleted with them.",
    secret: (made) => made.key || null,
    async info(user) {
      const answer = await api("GET", "/user/info", { query: { user_id: user.user_id } });
      const row = { ...answer.user_info, user_id: answer.user_id };
      return {
        row,
        pairs: [
          ["Id", el("code", { text: row.user_id })], ["Email", row.user_email],
          ["Role", row.user_role], ["Spend / budget", fmt.budget(row.spend, row.max_budget)],
          ["Budget resets every", row.budget_duration],
          ["Models", row.models && row.models.length ? fmt.list(row.models) : "every model"],
          ["Teams", answer.teams.length ? answer.teams.map((t) => t.team_alias || t.team_id).join(", ") : null],
          ["Keys", answer.keys.length ? answer.keys.map((k) => k.key_alias || k.key_name).join(", ") : null],
          ["Created", fmt.date(row.created_at)],
        ],
      };
    },
  });
})();
