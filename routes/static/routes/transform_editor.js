// The route page's rows editor of request_transformation and response_transformation, part 3 of 3: each block's
// sections (transform_rows.js, transform_mappings.js) put together around the block's JSON textarea.
// Progressive enhancement: the textarea stays the only thing posted. Rows are rendered from it and written back
// into it on every change and on submit, so the server's validation on save stays the judge; its errors come by
// path (#rusta-transform-errors, from routes.widgets) and are shown next to the input they name.
(function () {
  "use strict";

  const { HEADERS, BODY, MAX_BODY, QUERY_RULES, el, isObject, button, rulesSection, pathSection, numberSection,
          mappingsSection } = window.rustaTransform;
  const SECTIONS = {
    request_transformation: [
      HEADERS,
      { key: "path", kind: "path", title: "Path rewrite", add: "Add path rule",
        help: "Applied to the upstream path after {param} substitution: the first match is replaced; rules run " +
              "in order." },
      { key: "query_params", kind: "rules", spec: QUERY_RULES, title: "Query parameters", add: "Add query rule",
        help: "Parameters no rule names keep their exact bytes." },
      BODY,
      MAX_BODY,
    ],
    response_transformation: [
      HEADERS,
      { key: "status_code_mappings", kind: "mappings", title: "Status code mappings", add: "Add status mapping",
        help: "The first mapping whose status and condition match wins. Every part of a condition must hold; " +
              "a path pattern matches the whole client path, an upstream header value the whole field value." },
      BODY,
      MAX_BODY,
    ],
  };
  const RENDER = { rules: rulesSection, path: pathSection, mappings: mappingsSection, number: numberSection };

  const editors = [];
  let serverErrors = {};

  // --- One block: its textarea, toolbar and rows ----------------------------------------------------------

  class BlockEditor {
    constructor(textarea) {
      this.textarea = textarea;
      this.block = textarea.dataset.transformBlock;
      this.sections = SECTIONS[this.block] || [];
      this.mode = "json";
      this.dirty = false;
      this.original = {};
      this.parts = [];
      this.toggleButton = button("Edit as JSON", "te-toggle", "", () => this.toggle());
      this.message = el("span", { class: "te-message", role: "status" });
      const toolbar = el("div", { class: "te-toolbar" }, this.toggleButton, this.message);
      const tryLink = document.getElementById("rusta-try-link");
      if (tryLink) {
        toolbar.append(button("Try these rules ↗", "te-try", "try these rules, unsaved, in a new tab",
                              () => tryUnsaved(tryLink.href, textarea.form)));
      }
      this.body = el("div", { class: "te-body" });
      this.root = el("div", { class: "te-editor", "data-block": this.block }, toolbar, this.body);
      const holder = textarea.closest(".flex-container") || textarea;
      holder.after(this.root);
      this.body.addEventListener("input", (event) => this.edited(event));
      this.body.addEventListener("change", (event) => this.edited(event));
      if (textarea.form) textarea.form.addEventListener("submit", () => this.sync());
      const parsed = this.parse();
      if (parsed.ok) {
        this.render(parsed.value);
        this.showRows();
        this.placeErrors(serverErrors[this.block] || {});
      } else {
        this.showJSON(parsed.message);
      }
    }

    parse() {
      const text = this.textarea.value.trim();
      if (!text) return { ok: true, value: null };
      let value;
      try {
        value = JSON.parse(text);
      } catch (error) {
        return { ok: false, message: `The JSON does not parse (${error.message}); correct it below.` };
      }
      if (value !== null && !isObject(value)) {
        return { ok: false, message: "The block is not a JSON object; correct it below." };
      }
      return { ok: true, value };
    }

    render(block) {
      this.original = block || {};
      this.dirty = false;
      // A section the operator did not touch is written back as it came (an object form stays one).
      this.parts = this.sections.map((section) => {
        let part = null;
        part = RENDER[section.kind](section, this.original[section.key], () => {
          part.dirty = true;
          this.edited();
        });
        part.dirty = false;
        part.node.sectionPart = part;
        return part;
      });
      this.body.replaceChildren(...this.parts.map((part) => part.node));
      const known = new Set(this.sections.map((section) => section.key));
      const others = Object.keys(this.original).filter((key) => !known.has(key));
      if (others.length) {
        this.body.append(el("div", { class: "te-note", text: `Also kept as they are: ${others.join(", ")} ` +
                                                             "(use “Edit as JSON” to change them)." }));
      }
    }

    value() {
      const values = new Map(this.parts.map((part) => [part.key,
                                                       part.dirty ? part.read() : this.original[part.key]]));
      const out = {};
      // The block's own key order is kept; sections new to it come after.
      for (const key of Object.keys(this.original)) {
        if (values.has(key)) {
          if (values.get(key) !== undefined) out[key] = values.get(key);
          values.delete(key);
        } else {
          out[key] = this.original[key];
        }
      }
      for (const [key, item] of values) if (item !== undefined) out[key] = item;
      return Object.keys(out).length ? out : null;
    }

    edited(event) {
      const section = event && event.target.closest(".te-section");
      if (section && section.sectionPart) section.sectionPart.dirty = true;
      if (event && event.type === "input") {
        const wrap = event.target.closest(".te-field");
        const stale = wrap && wrap.querySelector(":scope > .te-error");
        if (stale) {
          stale.remove();
          wrap.classList.remove("te-invalid");
        }
      }
      this.dirty = true;
      this.write();
    }

    write() {
      const value = this.value();
      this.textarea.value = value === null ? "" : JSON.stringify(value, null, 2);
    }

    sync() {
      if (this.mode === "rows" && this.dirty) this.write();
    }

    toggle() {
      if (this.mode === "rows") {
        this.sync();
        this.showJSON("");
        this.textarea.focus();
        return;
      }
      const parsed = this.parse();
      if (!parsed.ok) {
        this.say(parsed.message);
        return;
      }
      this.render(parsed.value);
      this.showRows();
    }

    showRows() {
      this.mode = "rows";
      this.textarea.style.display = "none";
      this.body.hidden = false;
      this.toggleButton.textContent = "Edit as JSON";
      this.say("");
    }

    showJSON(message) {
      this.mode = "json";
      this.textarea.style.display = "";
      this.body.hidden = true;
      this.toggleButton.textContent = "Edit as rows";
      this.say(message);
    }

    say(message) {
      this.message.textContent = message;
    }

    // Each server error next to the input its path names, or else on the nearest row or section that holds it
    // (an object-form rule's path names no row); errors about the block as a whole stay in Django's own list
    // above the field, which shows every message too.
    placeErrors(errors) {
      const byPath = new Map();
      // In document order, so where a section or list and its only input share a path, the input wins.
      for (const node of this.body.querySelectorAll("[data-path]")) byPath.set(node.dataset.path, node);
      for (const [path, messages] of Object.entries(errors)) {
        let target = path;
        let rest = "";
        while (target && !byPath.has(target)) {
          const cut = Math.max(target.lastIndexOf("."), target.lastIndexOf("["));
          if (cut <= 0) { target = ""; break; }
          rest = target.slice(cut) + rest;
          target = target.slice(0, cut);
        }
        if (!target) continue;
        const where = rest.replace(/^\./, "");
        const list = el("ul", { class: "errorlist te-error" });
        for (const message of messages) list.append(el("li", { text: where ? `${where}: ${message}` : message }));
        byPath.get(target).append(list);
        byPath.get(target).classList.add("te-invalid");
      }
    }
  }

  // The "try it" panel with what the editors hold now (nothing saved), in a new tab; the sample is the panel's
  // own first one (routes.tryout.initial_for): the route's first method on its path without braces.
  function tryUnsaved(url, form) {
    editors.forEach((editor) => editor.sync());
    const method = form.querySelector("input[name=methods]:checked:not([value=TRACE])");  // the panel has no TRACE
    const external = form.querySelector("#id_external_path");
    const values = {
      csrfmiddlewaretoken: form.querySelector("input[name=csrfmiddlewaretoken]").value,
      request_transformation: form.querySelector("textarea[name=request_transformation]").value,
      response_transformation: form.querySelector("textarea[name=response_transformation]").value,
      method: method ? method.value : "GET",
      path: (external && external.value.replace(/[{}]/g, "")) || "/",
      query: "", request_headers: "", request_body: "", status: "200",
      response_headers: "Content-Type: application/json", response_body: "{}",
    };
    const post = el("form", { method: "post", action: url, target: "_blank", hidden: "" });
    for (const [name, value] of Object.entries(values)) {
      const input = el("input", { type: "hidden", name });
      input.value = value;
      post.append(input);
    }
    document.body.append(post);
    post.submit();
    post.remove();
  }

  function start() {
    // Rendered at the end of the form, after this script (which the form's media puts in the head).
    const errorsElement = document.getElementById("rusta-transform-errors");
    serverErrors = errorsElement ? JSON.parse(errorsElement.textContent) || {} : {};
    for (const textarea of document.querySelectorAll("textarea[data-transform-block]")) {
      editors.push(new BlockEditor(textarea));
    }
    window.rustaTransformEditors = editors;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
