// The directory pages (teams, organizations, internal users, customers, budgets) share one
// shape: a searchable, paginated list whose rows open a detail view with edit, block, delete
// and members. Each page describes its columns, form fields and admin-API calls; gh.directory
// builds the rest. Whatever a role may not do is left out here and refused by the API anyway.
"use strict";

gh.directory = (() => {
  const { el, api, badge } = gh;

  // Text of a column value, for searching lists the API answers whole.
  const textOf = (value) => value instanceof Node ? value.textContent : String(value ?? "");
  const empty = (value) => value === null || value === undefined || value === "" ||
    (Array.isArray(value) && value.length === 0);

  // One form field. spec: {name, label, type: text|number|list|json|bool|select|textarea,
  // options: [[value, label]], hint, required, fixed (shown but not editable once made),
  // createOnly (left out of an edit), get(row) (the value an edit starts from)}.
  function field(spec, formId) {
    const id = `${formId}-${spec.name}`;
    const hint = spec.hint || (spec.type === "list" ? "Comma separated" : null);
    const common = { name: spec.name, id, required: spec.required || null,
                     "aria-describedby": hint ? id + "-hint" : null };
    if (spec.type === "bool") {
      return el("div", { class: "field check" }, el("input", { ...common, type: "checkbox" }),
                el("label", { for: id, text: spec.label }));
    }
    let input;
    if (spec.type === "select") {
      input = el("select", common, spec.options.map(([value, label]) => el("option", { value, text: label })));
    } else if (spec.type === "json" || spec.type === "textarea") {
      input = el("textarea", { ...common, "data-type": spec.type === "json" ? "json" : null, rows: 3 });
    } else if (spec.type === "number") {
      input = el("input", { ...common, type: "number", step: "any", inputmode: "decimal", "data-type": "number" });
    } else {
      input = el("input", { ...common, type: "text", "data-type": spec.type === "list" ? "list" : null,
                            autocomplete: "off" });
    }
    // The hint sits outside the label: it describes the field rather than naming it.
    return el("div", { class: "field" }, el("label", { for: id, text: spec.label }), input,
              hint ? el("div", { class: "hint", id: id + "-hint", text: hint }) : null);
  }

  // A dialog with a form of `fields`, for making a thing and for changing one.
  // submit(body, editing) does the call; editing is the row being changed, or null.
  function formDialog(id, fields, { createTitle, editTitle, createLabel = "Create", submit, done }) {
    const title = el("h2", { id: id + "-title" });
    const button = el("button", { type: "submit", class: "primary", text: "Save" });
    const form = el("form", { id: id + "-form" }, title, fields.map((f) => field(f, id)),
                    el("div", { class: "dialog-actions" },
                       el("button", { type: "button", "data-close": true, text: "Cancel" }), button));
    document.body.append(el("dialog", { id, "aria-labelledby": id + "-title" }, form));
    const shown = gh.dialog(id);
    let editing = null;
    let initial = {};

    gh.bindForm(form, {
      async submit(body) {
        if (!editing) return submit(body, null);
        // An edit sends what changed; an emptied list is an empty one, not a missing one.
        const changes = gh.formChanges(form, initial);
        for (const f of fields) if (f.type === "list" && changes[f.name] === null) changes[f.name] = [];
        return Object.keys(changes).length ? submit(changes, editing) : null;
      },
      async done(result) { const was = editing; shown.close(); await done(result, was); },
    });

    return {
      open(row, values) {
        editing = row || null;
        initial = values || {};
        title.textContent = editing ? editTitle : createTitle;
        button.textContent = editing ? "Save" : createLabel;
        for (const f of fields) {
          const node = form.elements.namedItem(f.name);
          const hidden = Boolean(f.createOnly && editing);
          node.closest(".field").hidden = hidden;
          node.disabled = hidden || Boolean(editing && f.fixed);
        }
        shown.open(editing ? initial : null);
      },
    };
  }

  function valuesOf(fields, row) {
    return Object.fromEntries(fields.map((f) => [f.name, f.get ? f.get(row) : row[f.name]]));
  }

  // A small table of a thing's members, each with its own buttons.
  function membersTable(columns, rows, buttons) {
    const head = el("tr", null, columns.map((c) => el("th", { scope: "col", text: c.label })),
                    buttons ? el("th", { scope: "col", text: "" }) : null);
    const body = rows.length ? rows.map((row) => el("tr", null,
      columns.map((c) => { const v = c.value(row); return el("td", null, empty(v) ? "—" : v); }),
      buttons ? el("td", { class: "row-actions" }, buttons(row)) : null))
      : [el("tr", null, el("td", { colspan: columns.length + 1, class: "empty", text: "No members yet." }))];
    return el("div", { class: "table-wrap" }, el("table", null, el("thead", null, head), el("tbody", null, body)));
  }

  /* spec:
     noun                      "team": names buttons and dialogs
     label(row)                how a person knows a row
     columns                   gh.table columns
     list({page, pageSize, search})  an array (searched and paged here) or {rows, total}
     search                    the search box's label; none when absent
     fields, create(body), update(row, body), remove(row), removeWarning
     info(row)                 {row, pairs, members}: the detail view, from the *info route
     actions                   [{label(row), run(row), show(row), confirm(row)}]: block/unblock...
     secret(result)            a secret the create answer carries, shown once
     members                   {columns, fields, add(row, body), update(row, member, body),
                                remove(row, member), label(member)}
     may                       {create(), edit(row), members(row)}: beyond gh.viewer.canEdit */
  function directory(spec) {
    const root = document.getElementById("directory");
    const may = {
      create: () => gh.viewer.canEdit && (!spec.may?.create || spec.may.create()),
      edit: (row) => gh.viewer.canEdit && (!spec.may?.edit || spec.may.edit(row)),
      members: (row) => gh.viewer.canEdit && (!spec.may?.members || spec.may.members(row)),
    };
    const Noun = spec.noun[0].toUpperCase() + spec.noun.slice(1);
    const slug = spec.noun.replace(/\W+/g, "-");

    // --- the list --------------------------------------------------------------------------
    const search = el("input", { type: "search", name: "search", autocomplete: "off" });
    const toolbar = spec.search ? el("form", { class: "toolbar", role: "search" },
      el("label", null, spec.search, search), el("button", { type: "submit", text: "Search" })) : null;
    const tableBox = el("div");
    root.replaceChildren(...[toolbar, tableBox].filter(Boolean));
    const rows = gh.table(tableBox, {
      columns: spec.columns,
      pageSize: 20,
      onRow: (row) => openDetail(row),
      empty: `No ${spec.noun}s yet.`,
      async load({ page, pageSize }) {
        const text = search.value.trim();
        const answer = await spec.list({ page, pageSize, search: text });
        if (!Array.isArray(answer)) return answer;
        const wanted = text.toLowerCase();
        const found = wanted ? answer.filter((row) => spec.columns.some(
          (c) => textOf(c.value(row)).toLowerCase().includes(wanted))) : answer;
        return { rows: found.slice((page - 1) * pageSize, page * pageSize), total: found.length };
      },
    });
    if (toolbar) toolbar.addEventListener("submit", (event) => { event.preventDefault(); rows.first(); });

    // --- making and changing ---------------------------------------------------------------
    const editor = formDialog(`${slug}-editor`, spec.fields, {
      createTitle: `New ${spec.noun}`, editTitle: `Edit ${spec.noun}`,
      submit: (body, editing) => editing ? spec.update(editing, body) : spec.create(body),
      async done(result, editing) {
        rows.reload();
        if (editing) return refresh();
        const secret = spec.secret && spec.secret(result);
        gh.notice(`${Noun} ${spec.label(result)} created.`);
        if (secret) showSecret(secret);
      },
    });
    if (may.create()) {
      document.querySelector(".page-head .actions").append(
        el("button", { type: "button", class: "primary", text: `New ${spec.noun}`, onclick: () => editor.open() }));
    }

    const secretBox = el("div", { class: "secret" });
    document.body.append(el("dialog", { id: `${slug}-secret`, "aria-labelledby": `${slug}-secret-title` },
      el("div", { class: "body" }, el("h2", { id: `${slug}-secret-title`, text: "Save this key now" }),
         el("p", { text: "It is shown once: the gateway keeps only its hash." }), secretBox,
         el("div", { class: "dialog-actions" }, el("button", { type: "button", "data-close": true, text: "Done" })))));
    const secretDialog = gh.dialog(`${slug}-secret`);
    // Once closed, the secret is gone from the page too.
    secretDialog.node.addEventListener("close", () => secretBox.replaceChildren());
    function showSecret(secret) {
      secretBox.replaceChildren(el("code", { text: secret }), gh.copyButton(secret));
      secretDialog.open();
    }

    // --- the detail view -------------------------------------------------------------------
    const detailTitle = el("h2", { id: `${slug}-detail-title` });
    const detailError = el("p", { class: "form-error", role: "alert", hidden: true });
    const detailBody = el("div");
    const detail = el("dialog", { id: `${slug}-detail`, class: "wide", "aria-labelledby": `${slug}-detail-title` },
      el("div", { class: "body" }, detailTitle, detailError, detailBody,
         el("div", { class: "dialog-actions" }, el("button", { type: "button", "data-close": true, text: "Close" }))));
    document.body.append(detail);
    const detailDialog = gh.dialog(`${slug}-detail`);
    let current = null;  // the row shown, as its info route last answered

    const members = spec.members && formDialog(`${slug}-member-editor`, spec.members.fields, {
      createTitle: "Add member", editTitle: "Change member", createLabel: "Add",
      submit: (body, member) => member ? spec.members.update(current, member, body)
                                       : spec.members.add(current, body),
      done: () => refresh(),
    });

    function failed(error) {
      detailError.textContent = error.message;
      detailError.hidden = false;
    }

    // A button that runs an API call and then shows the result (or why it was refused).
    function act(label, run, { danger, confirmText } = {}) {
      return el("button", { type: "button", class: danger ? "danger" : null, text: label, async onclick() {
        if (confirmText && !await gh.confirm(confirmText, { action: label, danger: true })) return;
        detailError.hidden = true;
        try { await run(); } catch (error) { failed(error); }
      } });
    }

    async function openDetail(row) {
      current = row;
      detailTitle.textContent = spec.label(row);
      detailError.hidden = true;
      detailBody.replaceChildren(el("p", { class: "empty", text: "Loading…" }));
      if (!detail.open) detailDialog.open();
      await refresh();
    }

    // Closing one row's view and opening another's may leave the first one's answer on its way.
    const detailTurn = gh.newest(detailBody);
    detail.addEventListener("close", detailTurn.drop);
    async function refresh() {
      const asked = current;
      try {
        await detailTurn(() => spec.info(asked), show);
      } catch (error) { detailBody.replaceChildren(); failed(error); }
    }

    function show(shown) {
      current = shown.row;
      detailTitle.textContent = spec.label(current);
      const buttons = may.edit(current) ? [
        act("Edit", async () => editor.open(current, valuesOf(spec.fields, current))),
        ...(spec.actions || []).filter((a) => !a.show || a.show(current)).map((a) =>
          act(a.label(current), async () => { await a.run(current); rows.reload(); await refresh(); },
              { confirmText: a.confirm && a.confirm(current) })),
        act("Delete", async () => {
          await spec.remove(current);
          detailDialog.close();
          rows.reload();
          gh.notice(`${Noun} ${spec.label(current)} deleted.`);
        }, { danger: true, confirmText: `Delete ${spec.noun} ${spec.label(current)}? ${spec.removeWarning || ""}`.trim() }),
      ] : [];
      const parts = [buttons.length ? el("div", { class: "toolbar" }, buttons) : null, gh.details(shown.pairs)];
      if (spec.members) parts.push(membersSection(shown.members || []));
      detailBody.replaceChildren(...parts.filter(Boolean));
    }

    function membersSection(list) {
      const m = spec.members;
      const managing = may.members(current);
      const buttons = managing ? (member) => [
        act("Change", async () => members.open(member, valuesOf(m.fields, member))),
        act("Remove", async () => { await m.remove(current, member); await refresh(); },
            { danger: true, confirmText: `Remove ${m.label(member)} from ${spec.label(current)}?` }),
      ] : null;
      return el("section", { class: "members" },
        el("div", { class: "section-head" }, el("h3", { text: `Members (${list.length})` }),
           managing ? el("button", { type: "button", text: "Add member", onclick: () => members.open() }) : null),
        membersTable(m.columns, list, buttons));
    }

    return { reload: () => rows.reload() };
  }

  // A column showing a row's blocked flag.
  directory.status = (blocked) => blocked ? badge("blocked", "bad") : badge("active", "ok");
  return directory;
})();
