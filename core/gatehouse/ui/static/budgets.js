// Budgets: /budget/* through the directory helper. A budget is a set of limits that customers,
// organizations and memberships link to by its id.
"use strict";
(() => {
  const { api, el, fmt } = gh;
  const money = (value) => value === null || value === undefined ? "—" : fmt.money(value);

  gh.directory({
    noun: "budget",
    label: (b) => b.budget_id,
    search: "Search budgets",
    columns: [
      { label: "Budget", value: (b) => el("code", { text: b.budget_id }) },
      { label: "Max", value: (b) => money(b.max_budget), num: true },
      { label: "Soft", value: (b) => money(b.soft_budget), num: true, class: "hide-narrow" },
      { label: "Resets every", value: (b) => b.budget_duration },
      { label: "Tokens/min", value: (b) => fmt.num(b.tpm_limit), num: true, class: "hide-narrow" },
      { label: "Requests/min", value: (b) => fmt.num(b.rpm_limit), num: true, class: "hide-narrow" },
    ],
    list: () => api("GET", "/budget/list"),
    fields: [
      { name: "budget_id", label: "Budget id", fixed: true, hint: "Left empty, one is made up" },
      { name: "max_budget", label: "Max budget (USD)", type: "number", hint: "Calls are refused once spend reaches it" },
      { name: "soft_budget", label: "Soft budget (USD)", type: "number", hint: "An alert once spend reaches it" },
      { name: "budget_duration", label: "Resets every", hint: "e.g. 30d, 1mo; empty: never" },
      { name: "tpm_limit", label: "Tokens per minute", type: "number" },
      { name: "rpm_limit", label: "Requests per minute", type: "number" },
      { name: "max_parallel_requests", label: "Parallel requests", type: "number" },
      { name: "model_max_budget", label: "Budget per model (JSON)", type: "json",
        hint: 'e.g. {"gpt-4o": {"max_budget": 10, "budget_duration": "30d"}}' },
    ],
    create: (body) => api("POST", "/budget/new", { body }),
    update: (b, body) => api("POST", "/budget/update", { body: { ...body, budget_id: b.budget_id } }),
    remove: (b) => api("POST", "/budget/delete", { body: { id: b.budget_id } }),
    removeWarning: "Whatever links to it is no longer bound by it.",
    async info(b) {
      const [row] = await api("POST", "/budget/info", { body: { budgets: [b.budget_id] } });
      if (!row) throw new gh.ApiError(404, { message: `Budget ${b.budget_id} no longer exists.` });
      return {
        row,
        pairs: [
          ["Id", el("code", { text: row.budget_id })], ["Max budget", money(row.max_budget)],
          ["Soft budget", money(row.soft_budget)], ["Resets every", row.budget_duration],
          ["Next reset", row.budget_reset_at ? fmt.date(row.budget_reset_at) : null],
          ["Limits", `${fmt.num(row.tpm_limit)} tokens/min · ${fmt.num(row.rpm_limit)} requests/min · ` +
                     `${fmt.num(row.max_parallel_requests)} in parallel`],
          ["Per model", row.model_max_budget && Object.keys(row.model_max_budget).length
            ? el("pre", { text: JSON.stringify(row.model_max_budget, null, 2) }) : null],
          ["Created by", row.created_by], ["Created", fmt.date(row.created_at)],
        ],
      };
    },
  });
})();
