// Customers (end users): /customer/* through the directory helper. A customer's budget is either
// its own (max_budget) or a shared budget row it links to (budget_id).
"use strict";
(() => {
  const { api, el, fmt } = gh;
  const budget = (c, name) => c.litellm_budget_table ? c.litellm_budget_table[name] : null;

  gh.directory({
    noun: "customer",
    label: (c) => c.alias || c.user_id,
    search: "Search customers",
    columns: [
      { label: "Customer", value: (c) => el("code", { text: c.user_id }) },
      { label: "Name", value: (c) => c.alias },
      { label: "Spend / budget", value: (c) => fmt.budget(c.spend, budget(c, "max_budget")), num: true },
      { label: "Budget id", value: (c) => c.budget_id, class: "hide-narrow" },
      { label: "Default model", value: (c) => c.default_model, class: "hide-narrow" },
      { label: "Status", value: (c) => gh.directory.status(c.blocked) },
    ],
    list: () => api("GET", "/customer/list"),
    fields: [
      { name: "user_id", label: "Customer id", required: true, fixed: true, hint: "The user field of their requests" },
      { name: "alias", label: "Name" },
      { name: "max_budget", label: "Max budget (USD)", type: "number", get: (c) => budget(c, "max_budget"),
        hint: "Either this or a budget id" },
      { name: "budget_id", label: "Budget id", hint: "A budget from the Budgets page, shared with others" },
      { name: "default_model", label: "Default model", hint: "For their calls that name no model" },
      { name: "allowed_model_region", label: "Region", type: "select",
        options: [["", "any"], ["eu", "eu"], ["us", "us"]] },
    ],
    create: (body) => api("POST", "/customer/new", { body }),
    // An edit sends only what changed: a new max budget changes the linked budget, a new
    // budget id links another one.
    update: (customer, body) => api("POST", "/customer/update", { body: { ...body, user_id: customer.user_id } }),
    remove: (customer) => api("POST", "/customer/delete", { body: { user_ids: [customer.user_id] } }),
    actions: [{
      label: (c) => c.blocked ? "Unblock" : "Block",
      confirm: (c) => c.blocked ? null : `Block ${c.user_id}? Every call made for them is refused until they are unblocked.`,
      run: (c) => api("POST", c.blocked ? "/customer/unblock" : "/customer/block", { body: { user_ids: [c.user_id] } }),
    }],
    async info(customer) {
      const row = await api("GET", "/customer/info", { query: { end_user_id: customer.user_id } });
      const linked = row.litellm_budget_table;
      return {
        row: { ...row, budget_id: linked ? linked.budget_id : null },
        pairs: [
          ["Id", el("code", { text: row.user_id })], ["Name", row.alias], ["Status", gh.directory.status(row.blocked)],
          ["Spend / budget", fmt.budget(row.spend, budget(row, "max_budget"))],
          ["Budget", linked ? el("code", { text: linked.budget_id }) : null],
          ["Default model", row.default_model], ["Region", row.allowed_model_region],
        ],
      };
    },
  });
})();
