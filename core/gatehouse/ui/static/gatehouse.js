// The admin UI's shared script: every page reads and changes things through the admin API with
// `gh.api`, builds its DOM with `gh.el` (text only, never HTML: nothing a user stored can run as
// script), and uses the table, form, dialog, chart and CSV helpers below.
"use strict";

const gh = (() => {
  const data = document.body.dataset;
  const viewer = {
    role: data.role,
    user: data.user || null,
    canEdit: data.canEdit === "true",
    readsEverything: data.readsEverything === "true",
  };

  function cookie(name) {
    const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  class ApiError extends Error {
    constructor(status, error) {
      // A 422 names the field in its first problem's loc: ["body", "<field>", ...].
      const problem = error && Array.isArray(error.detail) ? error.detail[0] : null;
      // LiteLLM answers some refusals raw: {detail: "text"} or {detail: {error: "text"}}.
      const raw = error && error.detail && (error.detail.error || error.detail);
      const message = (problem && problem.msg) || (error && error.message) || raw || `HTTP ${status}`;
      super(typeof message === "string" ? message : JSON.stringify(message));
      this.status = status;
      const named = problem && Array.isArray(problem.loc) && problem.loc.length > 1 ? String(problem.loc[1]) : null;
      this.param = error && error.param && error.param !== "None" ? error.param : named;
      // The error's `type` (e.g. "guardrail_violation"), to tell a refusal from a failure.
      this.kind = (error && error.type) || null;
    }
  }

  // A 401 is also LiteLLM's answer to a role that may not call a route; only when the page
  // itself would now send the browser to log in has the session ended.
  async function sessionEnded() {
    const probe = await fetch(location.pathname, { credentials: "same-origin", redirect: "manual" });
    return probe.type === "opaqueredirect";
  }

  // One admin-API call with the session cookie; changes carry the session's CSRF token.
  async function api(method, path, { query, body } = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value === null || value === undefined || value === "") continue;
      for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, one);
    }
    const headers = { accept: "application/json" };
    if (method !== "GET") headers["x-csrf-token"] = cookie("gatehouse_csrf") || "";
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && await sessionEnded()) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, { message: "Your session has ended; log in again." });
    }
    const text = await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
    if (!response.ok) throw new ApiError(response.status, (parsed && (parsed.error || parsed)) || null);
    return parsed;
  }

  // el("a", {href, class: "x", text: "hi", onclick: fn, dataset: {id: 1}}, child, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children.filter(Boolean));
    return node;
  }

  const numbers = new Intl.NumberFormat();
  const fmt = {
    money(value) {
      const v = Number(value || 0);
      return "$" + (Math.abs(v) >= 1 || v === 0 ? v.toFixed(2) : v.toPrecision(3));
    },
    num(value) { return value === null || value === undefined ? "—" : numbers.format(value); },
    // Seconds since the epoch, milliseconds, or an ISO string.
    date(value) {
      if (value === null || value === undefined || value === "") return "—";
      const when = typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
      return isNaN(when) ? String(value) : when.toLocaleString();
    },
    budget(spend, max) {
      return max === null || max === undefined ? fmt.money(spend) : `${fmt.money(spend)} / ${fmt.money(max)}`;
    },
    list(values) { return values && values.length ? values.join(", ") : "—"; },
  };

  function badge(text, kind) { return el("span", { class: "badge" + (kind ? " " + kind : ""), text }); }

  const noticeEl = () => document.querySelector("main > .notice");
  function notice(message, kind) {
    const box = noticeEl();
    box.textContent = message;
    box.className = "notice" + (kind ? " " + kind : "");
    box.hidden = false;
  }
  function failed(error) { notice(error.message || String(error), "error"); }

  // A view that several requests may fill in turn (another search, another row opened, another
  // range chosen) shows only the answer to the one asked last: an older answer arriving late
  // would show what the user no longer asked for. The views are aria-busy until it answers.
  // turn = newest(view, ...); await turn(load, show): show(answer) runs only if no later turn
  // began; so does rethrowing load's error. A superseded turn resolves to undefined.
  // turn.drop(): the view is gone (its dialog closed), so no answer on its way is shown.
  function newest(...views) {
    let last = 0;
    const busy = (on) => views.forEach((view) => view.setAttribute("aria-busy", String(on)));
    const turn = async (load, show) => {
      const ticket = ++last;
      busy(true);
      let answer;
      try {
        answer = await load();
      } catch (error) {
        if (ticket === last) { busy(false); throw error; }
        return undefined;
      }
      if (ticket !== last) return undefined;
      busy(false);
      return show(answer);
    };
    turn.drop = () => { last += 1; busy(false); };
    return turn;
  }

  // A paginated table. columns: [{label, value(row) -> text|Node, num, class}];
  // load({page, pageSize}) -> {rows, total} (total optional: then "next" shows while pages are full).
  function table(container, { columns, load, pageSize = 25, onRow, empty = "Nothing here yet." }) {
    let page = 1;
    // A column's classes: "num" for numbers, plus its own (hide-narrow, say).
    const classOf = (c) => [c.num && "num", c.class].filter(Boolean).join(" ") || null;
    const head = el("tr", null, columns.map((c) => el("th", { class: classOf(c), scope: "col", text: c.label })));
    const tbody = el("tbody");
    const status = el("span", { "aria-live": "polite" });
    const prev = el("button", { type: "button", text: "Previous", onclick: () => go(page - 1) });
    const next = el("button", { type: "button", text: "Next", onclick: () => go(page + 1) });
    const tableEl = el("table", null, el("thead", null, head), tbody);
    container.replaceChildren(el("div", { class: "table-wrap" }, tableEl),
                              el("div", { class: "pager" }, status, prev, next));
    // Searches typed in quick succession may answer out of order.
    const turn = newest(tableEl);
    const only = (text) => el("tr", null, el("td", { colspan: columns.length, class: "empty", text }));

    function row(item) {
      const cells = columns.map((c) => {
        const value = c.value(item);
        return el("td", { class: classOf(c) }, value === null || value === undefined || value === "" ? "—" : value);
      });
      if (!onRow) return el("tr", null, cells);
      const open = () => onRow(item);
      return el("tr", { class: "clickable", tabindex: "0", onclick: open,
                        onkeydown: (e) => { if (e.key === "Enter") open(); } }, cells);
    }

    function go(to) {
      if (to < 1) return;
      // The old count would describe rows no longer shown.
      status.textContent = "Loading…";
      tbody.replaceChildren(only("Loading…"));
      return turn(() => load({ page: to, pageSize }), ({ rows, total }) => {
        page = to;
        tbody.replaceChildren(...(rows.length ? rows.map(row) : [only(empty)]));
        const pages = total === undefined || total === null ? null : Math.max(1, Math.ceil(total / pageSize));
        status.textContent = pages ? `Page ${page} of ${pages} · ${fmt.num(total)} in all` : `Page ${page}`;
        prev.disabled = page <= 1;
        next.disabled = pages ? page >= pages : rows.length < pageSize;
      }).catch((error) => {
        status.textContent = "";
        tbody.replaceChildren(only(error.message));
      });
    }
    go(1);
    return { reload: () => go(page), first: () => go(1) };
  }

  // The form's named fields as a JSON body. data-type on a field: number, list (comma
  // separated), json, bool; empty fields are left out so the API keeps its defaults.
  function formData(form) {
    const out = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled || field.type === "submit") continue;
      const kind = field.dataset.type;
      if (field.type === "checkbox") { out[field.name] = field.checked; continue; }
      const raw = field.value.trim();
      if (raw === "") continue;
      if (kind === "number") out[field.name] = Number(raw);
      else if (kind === "list") out[field.name] = raw.split(",").map((s) => s.trim()).filter(Boolean);
      else if (kind === "json") {
        try { out[field.name] = JSON.parse(raw); } catch { throw new ApiError(400, { message: "Not valid JSON", param: field.name }); }
      } else if (kind === "bool") out[field.name] = raw === "true";
      else out[field.name] = raw;
    }
    return out;
  }

  // Set the form's fields from a row (the opposite of formData).
  function fill(form, values) {
    form.reset();
    for (const field of form.elements) {
      if (!field.name || !(field.name in values)) continue;
      const value = values[field.name];
      if (field.type === "checkbox") field.checked = Boolean(value);
      else if (value === null || value === undefined) field.value = "";
      else if (field.dataset.type === "list" && Array.isArray(value)) field.value = value.join(", ");
      else if (field.dataset.type === "json") field.value = JSON.stringify(value, null, 2);
      else field.value = String(value);
    }
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((n) => n.remove());
    form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    const top = form.querySelector(".form-error");
    if (top) { top.textContent = ""; top.hidden = true; }
  }

  // An error next to the field the API named (its `param`), else at the top of the form.
  function showError(form, error) {
    const field = error.param && form.elements.namedItem(error.param);
    if (field && field.after) {
      const id = `${form.id || "form"}-${error.param}-error`;
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", id);
      field.after(el("div", { class: "field-error", id, role: "alert", text: error.message }));
      field.focus();
      return;
    }
    let top = form.querySelector(".form-error");
    if (!top) { top = el("p", { class: "form-error", role: "alert" }); form.prepend(top); }
    top.textContent = error.message;
    top.hidden = false;
  }

  // submit(body) does the API call; done(result) runs after it succeeded.
  function bindForm(form, { submit, done }) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const button = form.querySelector("[type=submit]");
      if (button) button.disabled = true;
      try {
        const result = await submit(formData(form));
        if (done) await done(result);
      } catch (error) {
        showError(form, error);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  // A <dialog> by id; open(values) fills its form first. Escape and Cancel close it.
  function dialog(id) {
    const node = document.getElementById(id);
    const form = node.querySelector("form");
    node.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => node.close()));
    return {
      node, form,
      open(values) {
        if (form) { clearErrors(form); values ? fill(form, values) : form.reset(); }
        node.showModal();
      },
      close() { node.close(); },
    };
  }

  // The named fields whose value differs from `before` (what the form was filled with), a
  // cleared one as null: an update body that changes only what the user changed.
  function formChanges(form, before) {
    const after = formData(form), out = {};
    const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    for (const field of form.elements) {
      const name = field.name;
      if (!name || field.disabled || field.type === "submit" || name in out) continue;
      if (name in after) {
        if (!same(after[name], before[name])) out[name] = after[name];
      } else if (before[name] !== null && before[name] !== undefined && before[name] !== ""
                 && !same(before[name], []) && !same(before[name], {})) {
        out[name] = null;
      }
    }
    return out;
  }

  // A yes/no question in a modal dialog; resolves true when the user confirms.
  function confirm(message, { action = "OK", danger = false } = {}) {
    return new Promise((resolve) => {
      let answer = false;
      const yes = el("button", { type: "submit", class: danger ? "danger" : "primary", text: action });
      const node = el("dialog", { class: "confirm", "aria-label": action },
        el("form", { method: "dialog", onsubmit: () => { answer = true; } },
           el("p", { text: message }),
           el("div", { class: "dialog-actions" },
              el("button", { type: "button", text: "Cancel", onclick: () => node.close() }), yes)));
      node.addEventListener("close", () => { node.remove(); resolve(answer); });
      document.body.append(node);
      node.showModal();
      yes.focus();
    });
  }

  function copyButton(text, label = "Copy") {
    const button = el("button", { type: "button", text: label });
    button.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
      catch { button.textContent = "Select and copy"; }
    });
    return button;
  }

  const COLORS = ["#1d4ed8", "#0d9488", "#d97706", "#9333ea", "#dc2626", "#64748b"];

  // The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten that is at least raw.
  function roundStep(raw) {
    const power = 10 ** Math.floor(Math.log10(raw));
    return power * ([1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * power >= raw * (1 - 1e-9)));
  }

  // A bar chart as SVG, stacked when there are several series; each bar's <title> gives its
  // exact value. labels: [..]; series: [{name, values: [..]}]; format: value -> text.
  function barChart(container, { labels, series, format = fmt.num, height = 220 }) {
    const width = 760, left = 56, bottom = 28, top = 8;
    const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (Number(s.values[i]) || 0), 0));
    const highest = Math.max(...totals, 0) || 1;
    // Round steps of about a quarter of the highest bar, whole ones for counts.
    const whole = series.every((s) => s.values.every((v) => Number.isInteger(Number(v) || 0)));
    const step = Math.max(roundStep(highest / 4), whole ? 1 : 0);
    const lines = Math.max(1, Math.ceil(highest / step - 1e-9));
    const max = step * lines;
    const plotH = height - top - bottom, slot = (width - left) / Math.max(labels.length, 1);
    const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                               "aria-label": series.map((s) => s.name).join(", ") });
    const ticks = [];
    for (let t = 0; t <= lines; t++) {
      const y = top + plotH - (plotH * t) / lines;
      ticks.push(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: format(step * t) }));
      chart.append(svg("line", { class: "axis", x1: left, x2: width, y1: y, y2: y }), ticks[t]);
    }
    const every = Math.ceil(labels.length / 12);
    labels.forEach((label, i) => {
      let base = top + plotH;
      series.forEach((s, k) => {
        const value = Number(s.values[i]) || 0;
        const h = (plotH * value) / max;
        base -= h;
        chart.append(svg("rect", { x: left + i * slot + slot * 0.15, y: base, width: slot * 0.7, height: Math.max(h, 0),
                                   fill: COLORS[k % COLORS.length] },
                         svg("title", { text: `${label} · ${s.name}: ${format(value)}` })));
      });
      if (i % every === 0) {
        chart.append(svg("text", { x: left + i * slot + slot / 2, y: height - 8, "text-anchor": "middle", text: label }));
      }
    });
    const legend = el("div", { class: "legend" }, series.map((s, k) => {
      // Set through the CSSOM: the page's CSP refuses style attributes.
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = COLORS[k % COLORS.length];
      return el("span", null, swatch, s.name);
    }));
    container.replaceChildren(chart, series.length > 1 ? legend : "");
    // A long label ("$12345.68") would run past the left edge, its "$" cut off first: the view
    // then starts further left. Its width is known only once the browser lays it out.
    const overhang = Math.max(0, ...ticks.map((tick) => -tick.getBBox().x)) + 2;
    if (overhang > 2) chart.setAttribute("viewBox", `${-overhang} 0 ${width + overhang} ${height}`);
  }

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    // A leading =, +, - or @ would run as a formula in a spreadsheet.
    const safe = /^[=+\-@\t\r]/.test(text) ? "'" + text : text;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  }

  // columns: [{label, value(row)}]
  function downloadCsv(filename, columns, rows) {
    const lines = [columns.map((c) => csvCell(c.label)).join(",")]
      .concat(rows.map((row) => columns.map((c) => csvCell(c.value(row))).join(",")));
    const link = el("a", { href: URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" })),
                           download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  // A definition list of [label, value] pairs, values as text or nodes.
  function details(pairs) {
    return el("dl", { class: "details" }, pairs.flatMap(([label, value]) =>
      [el("dt", { text: label }), el("dd", null, value === null || value === undefined || value === "" ? "—" : value)]));
  }

  return { viewer, api, ApiError, el, fmt, badge, notice, failed, newest, table, formData, fill, bindForm,
           showError, dialog, copyButton, formChanges, confirm, barChart, downloadCsv, details };
})();
