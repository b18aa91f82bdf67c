// Usage: spend, calls and tokens over time by key, team, model, tag or customer, from the daily
// activity views (GET /user|team|tag|customer/daily/activity). The API answers per UTC day and
// shows each role only what it may see; weeks and months are summed here from those days.
"use strict";
(() => {
  const { api, el, fmt, barChart, downloadCsv, table } = gh;
  const form = document.getElementById("usage-filters");
  const DAY_MS = 86400000;
  const TOP = 5; // groups charted on their own; the rest are stacked as "Other"
  const short = (id) => id.length > 12 ? id.slice(0, 10) + "…" : id;
  const DIMENSIONS = {
    key: { label: "Key", path: "/user/daily/activity", part: "api_keys",
           name: (id, meta) => meta.key_alias || short(id) },
    model: { label: "Model", path: "/user/daily/activity", part: "models", name: (id) => id },
    team: { label: "Team", path: "/team/daily/activity", part: "entities",
            name: (id, meta) => meta.team_alias || id,
            hint: "Calls made without a team are not in this view; the totals above count every call." },
    tag: { label: "Tag", path: "/tag/daily/activity", part: "entities", name: (id) => id,
           hint: "A call with several tags counts under each of them." },
    customer: { label: "Customer", path: "/customer/daily/activity", part: "entities",
                name: (id, meta) => meta.alias || id,
                hint: "Calls that named no end user (the request's `user`) are not in this view." },
  };
  const METRICS = {
    spend: { label: "Spend", format: fmt.money },
    api_requests: { label: "Requests", format: fmt.num },
    total_tokens: { label: "Tokens", format: fmt.num },
  };
  const COUNTS = ["spend", "api_requests", "successful_requests", "failed_requests",
                  "prompt_tokens", "completion_tokens", "total_tokens"];
  let shown = null; // what the CSV exports: {filename, dimension, periods, groups}

  const isoDay = (date) => date.toISOString().slice(0, 10);
  const utc = (day) => new Date(day + "T00:00:00Z");

  // The period a UTC day falls in: the day, the Monday its week starts on, or its month.
  function periodOf(day, granularity) {
    if (granularity === "month") return day.slice(0, 7);
    if (granularity === "week") {
      const date = utc(day);
      return isoDay(new Date(date - ((date.getUTCDay() + 6) % 7) * DAY_MS));
    }
    return day;
  }

  // Every period of the range, those without calls too: a day with nothing is a bar of zero.
  function periodsOf(start, end, granularity) {
    const out = [];
    for (let t = utc(start).getTime(); t <= utc(end).getTime(); t += DAY_MS) {
      const period = periodOf(isoDay(new Date(t)), granularity);
      if (out[out.length - 1] !== period) out.push(period);
    }
    return out;
  }

  const zero = () => Object.fromEntries(COUNTS.map((name) => [name, 0]));
  function addUp(into, metrics) { for (const name of COUNTS) into[name] += Number(metrics[name]) || 0; }

  // Every day of the range, a page of days at a time, and the range's totals.
  async function activity(path, range) {
    const days = [];
    let answer, page = 1;
    do {
      answer = await api("GET", path, { query: { ...range, page, page_size: 1000 } });
      days.push(...answer.results);
      page += 1;
    } while (answer.metadata.has_more);
    return { days, totals: answer.metadata };
  }

  // The dimension's groups, most of the metric first, with their sums per period.
  function groupsOf(days, dimension, granularity, metric) {
    const groups = new Map();
    for (const day of days) {
      const period = periodOf(day.date, granularity);
      for (const [id, entry] of Object.entries(day.breakdown[dimension.part] || {})) {
        let group = groups.get(id);
        if (!group) {
          group = { id, name: dimension.name(id, entry.metadata || {}), total: zero(), periods: {} };
          groups.set(id, group);
        }
        addUp(group.total, entry.metrics);
        addUp(group.periods[period] ||= zero(), entry.metrics);
      }
    }
    return [...groups.values()].sort((a, b) => b.total[metric] - a.total[metric] || a.name.localeCompare(b.name));
  }

  function chartSeries(groups, periods, metric) {
    const series = groups.slice(0, TOP).map((group) => ({
      name: group.name, values: periods.map((p) => (group.periods[p] || zero())[metric]) }));
    const rest = groups.slice(TOP);
    if (rest.length) {
      series.push({ name: `Other (${rest.length})`, values: periods.map((p) =>
        rest.reduce((sum, group) => sum + (group.periods[p] || zero())[metric], 0)) });
    }
    return series;
  }

  function stat(label, value, detail) {
    return el("div", { class: "stat" }, el("div", { class: "label", text: label }),
              el("div", { class: "value", text: value }),
              detail ? el("div", { class: "label", text: detail }) : null);
  }

  function showTotals(totals) {
    document.getElementById("usage-totals").replaceChildren(
      stat("Spend", fmt.money(totals.total_spend)),
      stat("Requests", fmt.num(totals.total_api_requests)),
      stat("Succeeded", fmt.num(totals.total_successful_requests)),
      stat("Failed", fmt.num(totals.total_failed_requests)),
      stat("Tokens", fmt.num(totals.total_tokens),
           `${fmt.num(totals.total_prompt_tokens)} prompt · ${fmt.num(totals.total_completion_tokens)} completion`));
  }

  const columns = (dimension) => [
    { label: dimension.label, value: (g) => g.name },
    { label: "Spend", num: true, value: (g) => fmt.money(g.total.spend) },
    { label: "Requests", num: true, value: (g) => fmt.num(g.total.api_requests) },
    // gh.table takes `class` only when `num` is unset: these right-align through it.
    { label: "Succeeded", class: "num hide-narrow", value: (g) => fmt.num(g.total.successful_requests) },
    { label: "Failed", num: true, value: (g) => fmt.num(g.total.failed_requests) },
    { label: "Prompt tokens", class: "num hide-narrow", value: (g) => fmt.num(g.total.prompt_tokens) },
    { label: "Completion tokens", class: "num hide-narrow", value: (g) => fmt.num(g.total.completion_tokens) },
    { label: "Tokens", num: true, value: (g) => fmt.num(g.total.total_tokens) },
  ];

  // Choices changed in quick succession may answer out of order; until the last one answers,
  // what is shown is marked busy (and dimmed): it is for the choices before.
  const turn = gh.newest(...["usage-totals", "usage-report", "usage-table"].map((id) => document.getElementById(id)));

  function refresh() {
    const wanted = gh.formData(form);
    const dimension = DIMENSIONS[wanted.dimension];
    const metric = METRICS[wanted.metric];
    const range = { start_date: wanted.start_date, end_date: wanted.end_date };
    return turn(async () => {
      if (!range.start_date || !range.end_date || range.end_date < range.start_date) {
        throw new Error("Choose a start date on or before the end date.");
      }
      document.querySelector("main > .notice").hidden = true;
      const overall = activity("/user/daily/activity", range);
      return Promise.all([overall, dimension.path === "/user/daily/activity" ? overall : activity(dimension.path, range)]);
    }, ([everything, grouped]) => {
      showTotals(everything.totals);
      const periods = periodsOf(range.start_date, range.end_date, wanted.granularity);
      const groups = groupsOf(grouped.days, dimension, wanted.granularity, wanted.metric);
      document.getElementById("usage-chart-title").textContent =
        `${metric.label} per ${wanted.granularity} by ${dimension.label.toLowerCase()}`;
      const chart = document.getElementById("usage-chart");
      if (groups.length) {
        barChart(chart, { labels: periods, series: chartSeries(groups, periods, wanted.metric), format: metric.format });
      } else {
        chart.replaceChildren(el("p", { class: "empty", text: "No calls in this range." }));
      }
      document.getElementById("usage-hint").textContent = dimension.hint || "";

      table(document.getElementById("usage-table"), {
        columns: columns(dimension),
        async load({ page, pageSize }) {
          return { rows: groups.slice((page - 1) * pageSize, page * pageSize), total: groups.length };
        },
        pageSize: 25,
        empty: "No calls in this range.",
      });
      shown = { filename: `usage-by-${wanted.dimension}-per-${wanted.granularity}-${range.start_date}-to-${range.end_date}.csv`,
                dimension, periods, groups };
    });
  }

  // One CSV row per period and group that had calls.
  function exportCsv() {
    if (!shown) return;
    const rows = shown.periods.flatMap((period) => shown.groups
      .filter((group) => group.periods[period])
      .map((group) => ({ period, group, metrics: group.periods[period] })));
    downloadCsv(shown.filename, [
      { label: "Period", value: (r) => r.period },
      { label: shown.dimension.label, value: (r) => r.group.name },
      { label: `${shown.dimension.label} id`, value: (r) => r.group.id },
      ...COUNTS.map((name) => ({ label: name, value: (r) => r.metrics[name] })),
    ], rows);
  }

  const today = new Date();
  form.elements.end_date.value = isoDay(today);
  form.elements.start_date.value = isoDay(new Date(today - 29 * DAY_MS));
  const run = () => refresh().catch(gh.failed);
  form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
  for (const name of ["dimension", "metric", "granularity"]) form.elements[name].addEventListener("change", run);
  document.getElementById("usage-csv").addEventListener("click", exportCsv);
  run();
})();
