// The route page's transformation rows editor, part 2 of 3: status code mappings and their conditions
// (protocols/transform/response.py, conditions.py), with the helpers of transform_rows.js.
(function () {
  "use strict";

  const { METHODS, el, isObject, shown, kept, readNumber, field, inputOf, button, rowTools, sectionShell,
          rawSection } = window.rustaTransform;

  const stringList = (value) => Array.isArray(value) && value.every((item) => typeof item === "string");

  function conditionFits(condition) {
    if (condition === undefined || condition === null || typeof condition === "string") return true;
    if (!isObject(condition)) return false;
    const { methods, path, headers } = condition;
    const methodsFit = methods === undefined || methods === null ||
      [].concat(methods).every((m) => typeof m === "string" && METHODS.includes(m.toUpperCase()));
    const pathFits = path === undefined || path === null || typeof path === "string" || stringList(path);
    const headersFit = headers === undefined || headers === null ||
      (isObject(headers) && Object.values(headers).every((v) => typeof v === "string" || typeof v === "boolean"));
    return methodsFit && pathFits && headersFit;
  }

  function conditionEditor(condition, path, changed) {
    const node = el("div", { class: "te-condition" }, el("span", { class: "te-label", text: "only when" }));
    if (path) node.dataset.path = path;
    const object = isObject(condition) ? condition : {};
    const expression = field("expression", "condition expression", typeof condition === "string" ? condition : "",
                             "", "path == '/health' && method == 'GET'");
    expression.hidden = !(typeof condition === "string" && condition.trim());

    const methods = el("span", { class: "te-field te-methods", "data-key": "methods" },
                       el("span", { class: "te-label", text: "methods" }));
    if (path) methods.dataset.path = `${path}.methods`;
    const chosen = [].concat(object.methods || []).map((m) => m.toUpperCase());
    for (const method of METHODS) {
      const box = el("input", { type: "checkbox", value: method });
      box.checked = chosen.includes(method);
      methods.append(el("label", { class: "te-check" }, box, ` ${method}`));
    }

    const paths = el("div", { class: "te-sublist", "data-key": "path" },
                     el("span", { class: "te-label", text: "client path patterns (any may match)" }));
    if (path) paths.dataset.path = `${path}.path`;
    const pathRows = el("div", { class: "te-subrows" });
    const addPath = (pattern, where) => {
      const row = el("div", { class: "te-subrow" });
      row.append(field("pattern", "path pattern (regex)", pattern, where, "^/health$"),
                 button("Remove", "te-remove", "remove path pattern", () => { row.remove(); changed(); }));
      pathRows.append(row);
      return row;
    };
    const pathList = Array.isArray(object.path);
    [].concat(object.path === undefined || object.path === null ? [] : object.path).forEach((pattern, index) =>
      addPath(pattern, path && (pathList ? `${path}.path[${index}]` : `${path}.path`)));
    paths.append(pathRows, button("Add path pattern", "te-add-sub", "add path pattern", () => {
      const row = addPath("", "");
      changed();
      row.querySelector("input").focus();
    }));

    const headers = el("div", { class: "te-sublist", "data-key": "headers" },
                       el("span", { class: "te-label", text: "upstream response headers (all must hold)" }));
    if (path) headers.dataset.path = `${path}.headers`;
    const headerRows = el("div", { class: "te-subrows" });
    const addHeader = (name, expected, where) => {
      const row = el("div", { class: "te-subrow te-header-condition" });
      if (where) row.dataset.path = where;  // a bad name or pattern is said at the end of the row
      const kind = el("select", { class: "te-kind", "aria-label": "header test" },
                      el("option", { value: "matches", text: "matches" }),
                      el("option", { value: "present", text: "is present" }),
                      el("option", { value: "absent", text: "is absent" }));
      kind.value = expected === true ? "present" : expected === false ? "absent" : "matches";
      const pattern = field("pattern", "value pattern (regex)", typeof expected === "string" ? expected : "", "",
                            "maint.*");
      const showPattern = () => { pattern.hidden = kind.value !== "matches"; };
      kind.addEventListener("change", showPattern);
      showPattern();
      row.append(field("name", "header name", name, "", "X-Backend-Mode"),
                 el("span", { class: "te-field", "data-key": "kind" },
                    el("span", { class: "te-label", text: "test" }), kind),
                 pattern,
                 button("Remove", "te-remove", "remove header test", () => { row.remove(); changed(); }));
      headerRows.append(row);
      return row;
    };
    for (const [name, expected] of Object.entries(object.headers || {})) {
      addHeader(name, expected, path && `${path}.headers.${name}`);
    }
    headers.append(headerRows, button("Add header test", "te-add-sub", "add header test", () => {
      const row = addHeader("", "", "");
      changed();
      row.querySelector("input").focus();
    }));

    const parts = [methods, paths, headers];
    const showParts = () => {
      const usesExpression = !expression.hidden && inputOf(node, "expression").value.trim() !== "";
      for (const part of parts) part.hidden = usesExpression;
    };
    expression.addEventListener("input", showParts);
    node.append(expression, ...parts);
    showParts();

    function read() {
      const text = inputOf(node, "expression").value;
      if (!expression.hidden && text.trim()) return kept(condition, text);
      const out = {};
      const checked = Array.from(methods.querySelectorAll("input:checked"), (box) => box.value);
      if (checked.length) {
        const same = chosen.length === checked.length && chosen.every((m) => checked.includes(m));
        out.methods = same ? object.methods : checked;
      }
      const patterns = Array.from(pathRows.querySelectorAll("input"), (input) => input.value)
        .filter((pattern) => pattern.trim() !== "");
      if (patterns.length) out.path = patterns.length === 1 && !pathList ? patterns[0] : patterns;
      const tests = {};
      for (const row of headerRows.children) {
        const name = inputOf(row, "name").value.trim();
        if (!name) continue;
        const how = row.querySelector(".te-kind").value;
        tests[name] = how === "present" ? true : how === "absent" ? false : inputOf(row, "pattern").value;
      }
      if (Object.keys(tests).length) out.headers = tests;
      for (const [key, item] of Object.entries(object)) {
        if (!["methods", "path", "headers"].includes(key)) out[key] = item;
      }
      return Object.keys(out).length ? out : undefined;
    }

    return { node, read };
  }

  function mappingsSection(section, value, changed) {
    const list = value === undefined || value === null ? [] :
      Array.isArray(value) && value.every((m) => isObject(m) && conditionFits(m.condition)) ? value : null;
    if (list === null) return rawSection(section, value);
    const node = sectionShell(section, "");
    node.dataset.path = section.key;
    const rows = el("div", { class: "te-rows" });

    function addRow(mapping, path) {
      const row = el("div", { class: "te-row te-mapping" });
      row.original = mapping;
      if (path) row.dataset.path = path;
      const condition = conditionEditor(mapping.condition, path && `${path}.condition`, changed);
      row.condition = condition;
      row.append(field("from", "from status", shown(mapping.from), path && `${path}.from`, "404"),
                 field("to", "to status", shown(mapping.to), path && `${path}.to`, "200"),
                 rowTools(row, changed), condition.node);
      rows.append(row);
      return row;
    }

    list.forEach((mapping, index) => addRow(mapping, `${section.key}[${index}]`));
    node.append(rows, button(section.add, "te-add", section.add, () => {
      const row = addRow({}, "");
      changed();
      inputOf(row, "from").focus();
    }));

    function readRow(row) {
      const original = row.original;
      const mapping = { from: readNumber(original.from, inputOf(row, "from").value),
                        to: readNumber(original.to, inputOf(row, "to").value) };
      const condition = row.condition.read();
      if (condition !== undefined) mapping.condition = condition;
      for (const [key, item] of Object.entries(original)) {
        if (!["from", "to", "condition"].includes(key)) mapping[key] = item;
      }
      return mapping;
    }

    return {
      key: section.key, node,
      read: () => {
        const found = Array.from(rows.children, readRow);
        return found.length ? found : undefined;
      },
    };
  }

  window.rustaTransform.mappingsSection = mappingsSection;
})();
