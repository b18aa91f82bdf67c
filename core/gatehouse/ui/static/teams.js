// Teams: /team/* through the directory helper. Anyone but an admin sees the teams they are a
// member of; a team's admins manage its members, an organization's admins its teams.
"use strict";
(async () => {
  const { api, el, fmt, badge } = gh;
  const me = gh.viewer.user;
  const proxyAdmin = gh.viewer.role === "proxy_admin";
  // The organizations this person runs: their admins make and change the teams in them.
  const runs = new Set();
  if (gh.viewer.canEdit && !proxyAdmin) {
    for (const org of await api("GET", "/organization/list").catch(() => [])) {
      if (org.members.some((m) => m.user_id === me && m.user_role === "org_admin")) runs.add(org.organization_id);
    }
  }
  const changes = (team) => proxyAdmin || runs.has(team.organization_id);
  const ROLES = [["user", "user"], ["admin", "admin"]];

  gh.directory({
    noun: "team",
    label: (t) => t.team_alias || t.team_id,
    search: "Search teams",
    columns: [
      { label: "Team", value: (t) => t.team_alias || el("code", { text: t.team_id }) },
      { label: "Id", value: (t) => el("code", { text: t.team_id }), class: "hide-narrow" },
      { label: "Organization", value: (t) => t.organization_id, class: "hide-narrow" },
      { label: "Members", value: (t) => fmt.num(t.members_with_roles.length), num: true },
      { label: "Spend / budget", value: (t) => fmt.budget(t.spend, t.max_budget), num: true },
      { label: "Models", value: (t) => fmt.list(t.models), class: "hide-narrow" },
      { label: "Status", value: (t) => gh.directory.status(t.blocked) },
    ],
    list: () => api("GET", "/team/list", { query: { user_id: gh.viewer.readsEverything ? null : me } }),
    fields: [
      { name: "team_alias", label: "Name" },
      { name: "team_id", label: "Team id", fixed: true, hint: "Left empty, one is made up" },
      { name: "organization_id", label: "Organization id" },
      { name: "models", label: "Models", type: "list", hint: "Comma separated; empty allows every model" },
      { name: "max_budget", label: "Max budget (USD)", type: "number" },
      { name: "budget_duration", label: "Budget resets every", hint: "e.g. 30d, 1mo; empty: never" },
      { name: "tpm_limit", label: "Tokens per minute", type: "number" },
      { name: "rpm_limit", label: "Requests per minute", type: "number" },
    ],
    create: (body) => api("POST", "/team/new", { body }),
    update: (team, body) => api("POST", "/team/update", { body: { ...body, team_id: team.team_id } }),
    remove: (team) => api("POST", "/team/delete", { body: { team_ids: [team.team_id] } }),
    removeWarning: "Its keys are deleted with it.",
    actions: [{
      label: (t) => t.blocked ? "Unblock" : "Block",
      confirm: (t) => t.blocked ? null : `Block ${t.team_alias || t.team_id}? Every key of the team is refused until it is unblocked.`,
      run: (t) => api("POST", t.blocked ? "/team/unblock" : "/team/block", { body: { team_id: t.team_id } }),
    }],
    async info(team) {
      const answer = await api("GET", "/team/info", { query: { team_id: team.team_id } });
      const row = answer.team_info;
      const seats = Object.fromEntries(answer.team_memberships.map((m) => [m.user_id, m]));
      return {
        row,
        pairs: [
          ["Id", el("code", { text: row.team_id })], ["Status", gh.directory.status(row.blocked)],
          ["Organization", row.organization_id], ["Models", row.models.length ? fmt.list(row.models) : "every model"],
          ["Spend / budget", fmt.budget(row.spend, row.max_budget)], ["Budget resets every", row.budget_duration],
          ["Limits", `${fmt.num(row.tpm_limit)} tokens/min · ${fmt.num(row.rpm_limit)} requests/min`],
          ["Keys", answer.keys.length ? answer.keys.map((k) => k.key_alias || k.key_name).join(", ") : null],
          ["Created", fmt.date(row.created_at)],
        ],
        members: row.members_with_roles.map((m) => ({ ...m, seat: seats[m.user_id] || null })),
      };
    },
    members: {
      label: (m) => m.user_id || m.user_email,
      columns: [
        { label: "User", value: (m) => m.user_id },
        { label: "Email", value: (m) => m.user_email },
        { label: "Role", value: (m) => badge(m.role, m.role === "admin" ? "info" : null) },
        { label: "Spend / budget in team", value: (m) => m.seat && fmt.budget(m.seat.spend, m.seat.litellm_budget_table?.max_budget) },
      ],
      fields: [
        { name: "user_id", label: "User id", fixed: true },
        { name: "user_email", label: "Email", fixed: true },
        { name: "role", label: "Role", type: "select", options: ROLES },
        { name: "max_budget_in_team", label: "Their budget in the team (USD)", type: "number",
          get: (m) => m.seat?.litellm_budget_table?.max_budget },
      ],
      add: (team, { max_budget_in_team, ...member }) => api("POST", "/team/member_add",
        { body: { team_id: team.team_id, member, max_budget_in_team } }),
      // The route lifts every limit of the member it is not given: the unchanged ones go too.
      update: (team, m, changes) => {
        const limits = m.seat?.litellm_budget_table || {};
        return api("POST", "/team/member_update", { body: {
          max_budget_in_team: limits.max_budget, tpm_limit: limits.tpm_limit, rpm_limit: limits.rpm_limit,
          ...changes, team_id: team.team_id, user_id: m.user_id } });
      },
      remove: (team, m) => api("POST", "/team/member_delete", { body: { team_id: team.team_id, user_id: m.user_id } }),
    },
    may: {
      create: () => proxyAdmin || runs.size > 0,
      edit: changes,
      // The team's own admins manage its members too.
      members: (t) => changes(t) || t.members_with_roles.some((m) => m.user_id === me && m.role === "admin"),
    },
  });
})();
