// The route page's transformation rows editor, part 1 of 3: helpers and the sections of header, query and body
// rules, the path rewrite and the body size cap (the shapes of protocols/transform). transform_mappings.js adds
// the status code mappings, transform_editor.js puts the sections of each block together.
(function () {
  "use strict";

  const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
  // The object form ({"set": {...}, "remove": [...]}) runs its actions in this order (protocols/transform/rules.py).
  const OBJECT_ORDER = ["remove", "rename", "replace", "set", "add"];
  // Which inputs each action uses (headers.py, query.py, body.py); `keys` are all a rule may have besides action.
  const HEADER_RULES = {
    target: "name", keys: ["name", "value", "pattern", "replacement", "to"],
    uses: { add: ["name", "value"], set: ["name", "value"], remove: ["name"],
            replace: ["name", "pattern", "replacement"], rename: ["name", "to"] },
    placeholders: { name: "X-Env", value: "prod", pattern: "^(\\d+)$", replacement: "v$1", to: "X-New-Name" },
  };
  const QUERY_RULES = {
    target: "name", keys: ["name", "value", "to"],
    uses: { add: ["name", "value"], set: ["name", "value"], remove: ["name"], rename: ["name", "to"] },
    placeholders: { name: "debug", value: "1", to: "new_name" },
  };
  const BODY_RULES = {
    target: "path", keys: ["path", "value", "to"], jsonValue: true,
    uses: { add: ["path", "value"], set: ["path", "value"], remove: ["path"], rename: ["path", "to"] },
    placeholders: { path: "user.name", value: "text, 42, true or {\"a\": 1}", to: "user.full_name" },
  };
  const LABELS = {
    name: "name", value: "value", pattern: "pattern (regex)", replacement: "replacement", to: "to",
    path: "field path",
  };
  const HEADERS = {
    key: "headers", kind: "rules", spec: HEADER_RULES, title: "Header rules", add: "Add header rule",
    help: "In order. add: only when absent; set: replaces every value; replace: every match of the pattern in " +
          "the value ($1, ${name} for groups); rename: to a new name.",
  };
  const BODY = {
    key: "body", kind: "rules", spec: BODY_RULES, title: "JSON body rules", add: "Add body rule",
    help: "By dotted path (user.name, items.0.id). The value is JSON: plain text is a string, \"42\" in quotes " +
          "is the string 42.",
  };
  const MAX_BODY = {
    key: "max_body_bytes", kind: "number", title: "Largest JSON body edited (bytes)", placeholder: "1048576",
    help: "Bodies over this go through untouched. Empty: 1 MiB.",
  };

  // --- Small helpers ---------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
  const shown = (value) => (value === undefined || value === null ? "" :
                            typeof value === "string" ? value : JSON.stringify(value));
  // The original value when its input was not changed (a number stays a number), else the input's text.
  const kept = (original, text) => (original !== undefined && shown(original) === text ? original : text);

  function parses(text) {
    try { JSON.parse(text); return true; } catch (error) { return false; }
  }
  const shownJSON = (value) => (value === undefined ? "" :
                                typeof value === "string" && !parses(value) ? value : JSON.stringify(value));
  const readJSON = (text) => (parses(text) ? JSON.parse(text) : text);

  function readNumber(original, text) {
    const trimmed = text.trim();
    return /^\d+$/.test(trimmed) ? Number(trimmed) : kept(original, text);
  }

  function field(key, label, value, path, placeholder) {
    const input = el("input", { type: "text", class: "te-input", "aria-label": label, placeholder: placeholder || "" });
    input.value = value;
    const wrap = el("span", { class: "te-field", "data-key": key }, el("span", { class: "te-label", text: label }),
                    input);
    if (path) wrap.dataset.path = path;
    return wrap;
  }

  const inputOf = (container, key) => container.querySelector(`:scope > .te-field[data-key="${key}"] input`);

  function button(text, cls, label, onClick) {
    const node = el("button", { type: "button", class: `te-button ${cls}`, text, "aria-label": label || text });
    node.addEventListener("click", onClick);
    return node;
  }

  // The row tools: order is rule order, so rows move up and down.
  function rowTools(row, changed) {
    return el("span", { class: "te-tools" },
      button("↑", "te-up", "move up", () => {
        if (row.previousElementSibling) { row.parentNode.insertBefore(row, row.previousElementSibling); changed(); }
      }),
      button("↓", "te-down", "move down", () => {
        if (row.nextElementSibling) { row.parentNode.insertBefore(row.nextElementSibling, row); changed(); }
      }),
      button("Remove", "te-remove", "remove", () => { row.remove(); changed(); }));
  }

  // --- Reading a block's sections into rows (null: not a shape the rows can show) --------------------------

  function fromObjectForm(value, actions, target) {
    if (Object.keys(value).some((key) => !actions.includes(key))) return null;
    const rules = [];
    for (const action of OBJECT_ORDER) {
      if (!actions.includes(action) || value[action] === undefined || value[action] === null) continue;
      const body = value[action];
      if (action === "remove") {
        const names = typeof body === "string" ? [body] : body;
        if (!Array.isArray(names)) return null;
        names.forEach((name) => rules.push({ action, [target]: name }));
      } else if (action === "replace") {
        let list = Array.isArray(body) ? body : isObject(body) && target in body ? [body] : null;
        if (list === null && isObject(body)) {
          list = Object.entries(body).map(([name, spec]) => (isObject(spec) ? { [target]: name, ...spec }
                                                                             : { [target]: name, pattern: spec }));
        }
        if (!Array.isArray(list) || !list.every(isObject)) return null;
        list.forEach((rule) => rules.push(Object.assign({ action }, rule, { action })));
      } else {
        if (!isObject(body)) return null;
        for (const [name, item] of Object.entries(body)) {
          rules.push(action === "rename" ? { action, [target]: name, to: item }
                                         : { action, [target]: name, value: item });
        }
      }
    }
    return rules;
  }

  function readRules(value, spec) {
    if (value === undefined || value === null) return { rules: [], converted: false };
    if (Array.isArray(value)) return value.every(isObject) ? { rules: value, converted: false } : null;
    if (isObject(value)) {
      const rules = fromObjectForm(value, Object.keys(spec.uses), spec.target);
      return rules && { rules, converted: true };
    }
    return null;
  }

  // --- Sections -------------------------------------------------------------------------------------------

  function sectionShell(section, note) {
    const node = el("div", { class: "te-section", "data-section": section.key },
                    el("div", { class: "te-title", text: section.title }),
                    section.help ? el("div", { class: "te-help", text: section.help }) : null,
                    note ? el("div", { class: "te-note", text: note }) : null);
    return node;
  }

  function rawSection(section, value) {
    const node = sectionShell(section, "Not in a shape the rows can show: kept as it is; use “Edit as JSON” to " +
                                       "change it.");
    node.dataset.path = section.key;
    node.append(el("pre", { class: "te-raw", text: JSON.stringify(value, null, 2) }));
    return { key: section.key, node, read: () => value };
  }

  function rulesSection(section, value, changed) {
    const read = readRules(value, section.spec);
    if (read === null) return rawSection(section, value);
    const spec = section.spec;
    const node = sectionShell(section, read.converted
      ? "Written as an object; shown in the order the proxy runs it (remove, rename, replace, set, add), and " +
        "saved as a list once changed here." : "");
    node.dataset.path = section.key;
    const rows = el("div", { class: "te-rows" });

    function addRow(rule, path) {
      const row = el("div", { class: "te-row" });
      row.original = rule;
      if (path) row.dataset.path = path;
      const actions = Object.keys(spec.uses);
      const select = el("select", { class: "te-action", "aria-label": "action" });
      for (const action of actions) select.append(el("option", { value: action, text: action }));
      const current = rule.action === undefined ? "set" : shown(rule.action);
      if (!actions.includes(current)) select.append(el("option", { value: current, text: current }));
      select.value = current;
      const actionField = el("span", { class: "te-field", "data-key": "action" },
                             el("span", { class: "te-label", text: "action" }), select);
      if (path) actionField.dataset.path = `${path}.action`;
      row.append(actionField);
      for (const key of spec.keys) {
        const text = spec.jsonValue && key === "value" ? shownJSON(rule[key]) : shown(rule[key]);
        row.append(field(key, LABELS[key], text, path && `${path}.${key}`, spec.placeholders[key]));
      }
      const showUsed = () => {
        const used = spec.uses[select.value] || spec.keys;
        for (const key of spec.keys) {
          row.querySelector(`:scope > .te-field[data-key="${key}"]`).hidden = !used.includes(key);
        }
      };
      select.addEventListener("change", showUsed);
      showUsed();
      row.append(rowTools(row, changed));
      rows.append(row);
      return row;
    }

    read.rules.forEach((rule, index) => addRow(rule, read.converted ? "" : `${section.key}[${index}]`));
    node.append(rows, button(section.add, "te-add", section.add, () => {
      const row = addRow({}, "");
      changed();
      inputOf(row, spec.target).focus();
    }));

    function readRow(row) {
      const original = row.original;
      const action = kept(original.action, row.querySelector(".te-action").value);
      const rule = { action };
      const used = spec.uses[action] || spec.keys.filter((key) => key in original);
      for (const key of used) {
        const text = inputOf(row, key).value;
        if (spec.jsonValue && key === "value") {
          const same = original.value !== undefined && shownJSON(original.value) === text;
          rule.value = same ? original.value : readJSON(text);
        } else {
          rule[key] = kept(original[key], text);
        }
      }
      // Keys the rows have no input for (notes like "_comment", or unknown ones the server will name) stay.
      for (const [key, item] of Object.entries(original)) {
        if (key !== "action" && !spec.keys.includes(key)) rule[key] = item;
      }
      return rule;
    }

    return {
      key: section.key, node,
      read: () => {
        const list = Array.from(rows.children, readRow);
        return list.length ? list : undefined;
      },
    };
  }

  function pathSection(section, value, changed) {
    const list = value === undefined || value === null ? [] : isObject(value) ? [value] :
      Array.isArray(value) && value.every(isObject) ? value : null;
    if (list === null) return rawSection(section, value);
    const wasList = Array.isArray(value);
    const node = sectionShell(section, "");
    node.dataset.path = section.key;
    const rows = el("div", { class: "te-rows" });

    function addRow(rule, path) {
      const row = el("div", { class: "te-row" });
      row.original = rule;
      if (path) row.dataset.path = path;
      row.append(field("pattern", "pattern (regex)", shown(rule.pattern), path && `${path}.pattern`,
                       "^/api/v1/(.+)$"),
                 field("replacement", "replacement", shown(rule.replacement), path && `${path}.replacement`,
                       "/$1"),
                 rowTools(row, changed));
      rows.append(row);
      return row;
    }

    list.forEach((rule, index) => addRow(rule, wasList ? `path[${index}]` : "path"));
    node.append(rows, button(section.add, "te-add", section.add, () => {
      const row = addRow({}, "");
      changed();
      inputOf(row, "pattern").focus();
    }));

    function readRow(row) {
      const original = row.original;
      const rule = { pattern: kept(original.pattern, inputOf(row, "pattern").value),
                     replacement: kept(original.replacement, inputOf(row, "replacement").value) };
      for (const [key, item] of Object.entries(original)) if (!(key in rule)) rule[key] = item;
      return rule;
    }

    return {
      key: section.key, node,
      read: () => {
        const found = Array.from(rows.children, readRow);
        if (!found.length) return undefined;
        return found.length === 1 && !wasList ? found[0] : found;
      },
    };
  }

  function numberSection(section, value) {
    if (value !== undefined && value !== null && typeof value !== "number" && typeof value !== "string") {
      return rawSection(section, value);
    }
    const node = sectionShell(section, "");
    const input = field(section.key, "bytes", shown(value), section.key, section.placeholder);
    node.append(input);
    return {
      key: section.key, node,
      read: () => {
        const text = input.querySelector("input").value;
        return text.trim() === "" ? undefined : readNumber(value, text);
      },
    };
  }

  window.rustaTransform = Object.assign(window.rustaTransform || {}, {
    METHODS, HEADERS, BODY, MAX_BODY, QUERY_RULES, el, isObject, shown, kept, readNumber, field, inputOf, button,
    rowTools, sectionShell, rawSection, rulesSection, pathSection, numberSection,
  });
})();
