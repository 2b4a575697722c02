/* closedloop's crowd HTML elements: A2I's task UI elements as plain custom elements.
 *
 * No build step and no network access. Each answer field answers crowdAnswer()
 * with [name, value] pairs in the shape A2I writes to answerContent, crowdProblem()
 * with a message when its value cannot be submitted, and crowdReset(). crowd-form
 * gathers them and talks to the host page only with window.parent.postMessage:
 *   {type: "closedloop:submit", answerContent: {...}}   on submit
 *   {type: "closedloop:skip"}                           on skip (S key)
 * and listens for {type: "closedloop:focus"} and {type: "closedloop:submit"} from the host.
 * Keyboard: 1-9 pick a label in the active classifier or annotator (a multi-select's
 * exclusion choice takes the number after its last category), Enter submits
 * (or finishes a shape being drawn), S skips; Ctrl+Enter submits from a text area.
 *
 * The parts in this folder share one scope: render.py joins them, in the order
 * of CROWD_SCRIPT_PARTS, inside one strict-mode function.
 */
  var SUBMIT = "closedloop:submit";
  var SKIP = "closedloop:skip";
  var FOCUS = "closedloop:focus";
  var SVG = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- helpers

  // The document's methods, taken from their prototypes: markup from the input
  // may name elements after them (<img name="querySelector">), which hides them
  // on document itself.
  function docMethod(owner, name) {
    var method = owner.prototype[name];
    return function () { return method.apply(document, arguments); };
  }

  function docGetter(name) {
    var getter = Object.getOwnPropertyDescriptor(Document.prototype, name).get;
    return function () { return getter.call(document); };
  }

  var doc = {
    querySelector: docMethod(Document, "querySelector"),
    querySelectorAll: docMethod(Document, "querySelectorAll"),
    createElement: docMethod(Document, "createElement"),
    createElementNS: docMethod(Document, "createElementNS"),
    createTextNode: docMethod(Document, "createTextNode"),
    createTreeWalker: docMethod(Document, "createTreeWalker"),
    addEventListener: docMethod(EventTarget, "addEventListener"),
    dispatchEvent: docMethod(EventTarget, "dispatchEvent"),
    activeElement: docGetter("activeElement"),
    documentElement: docGetter("documentElement"),
  };

  function el(tag, attrs, children) {
    var node = doc.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false)
        node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? doc.createTextNode(child) : child);
    });
    return node;
  }

  function svgEl(tag, attrs) {
    var node = doc.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  // Attributes hold JSON, or the JavaScript literals AWS's docs and samples write
  // (['a', 'b'], { label: "cat", left: 20, }): both are read, never evaluated.
  function parseJson(text, fallback) {
    if (text === null || text === undefined || text === "") return fallback;
    try {
      return JSON.parse(text);
    } catch (e) {
      var json = literalToJson(String(text));
      if (json === null) return fallback;
      try {
        return JSON.parse(json);
      } catch (e2) {
        return fallback;
      }
    }
  }

  var LITERAL_TOKEN = /\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[{}[\]:,]/y;

  // A JavaScript array or object literal of plain data, rewritten as JSON: keys
  // and single-quoted strings get double quotes, trailing commas and comments go. Null when
  // the text holds anything else (a call, an expression, a variable).
  function literalToJson(text) {
    var out = [], tokens = [];
    LITERAL_TOKEN.lastIndex = 0;
    while (LITERAL_TOKEN.lastIndex < text.length) {
      var match = LITERAL_TOKEN.exec(text);
      if (!match) return null;
      if (!/^(?:\s|\/[/*])/.test(match[0])) tokens.push(match[0]);
    }
    for (var i = 0; i < tokens.length; i++) {
      var token = tokens[i], next = tokens[i + 1];
      if (token === "," && (next === "}" || next === "]")) continue;
      if (token.charAt(0) === "'") out.push(JSON.stringify(looseValue(token)));
      else if (/^[A-Za-z_$]/.test(token) && next === ":") out.push(JSON.stringify(token));
      else if (/^[A-Za-z_$]/.test(token) && !Object.prototype.hasOwnProperty.call(LOOSE_WORDS, token)) return null;
      else out.push(token);
    }
    return out.join(" ");  // "[1 2]" stays two tokens, and so fails as JSON
  }

  // exclusion-category is written as a JS object literal ({ text: 'None of the above' }):
  // read its flat key/value pairs with a small tokenizer (never eval); strict JSON
  // reads the same way. Returns null for anything else.
  var LOOSE_TOKEN = /\s+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|[{}:,]/y;
  var LOOSE_WORDS = { "true": true, "false": false, "null": null };

  function looseTokens(text) {
    var tokens = [];
    LOOSE_TOKEN.lastIndex = 0;
    while (LOOSE_TOKEN.lastIndex < text.length) {
      var match = LOOSE_TOKEN.exec(text);
      if (!match) return null;
      if (!/^\s/.test(match[0])) tokens.push(match[0]);
    }
    return tokens;
  }

  function looseValue(token) {
    var quote = token.charAt(0);
    if (quote === "'" || quote === '"') {
      return token.slice(1, -1).replace(/\\(.)/g, function (_, c) {
        return c === "n" ? "\n" : c === "t" ? "\t" : c;
      });
    }
    if (/^-?\d/.test(token)) return Number(token);
    return Object.prototype.hasOwnProperty.call(LOOSE_WORDS, token) ? LOOSE_WORDS[token] : undefined;
  }

  function parseLooseObject(text) {
    var tokens = looseTokens(String(text || "").trim());
    if (!tokens || tokens[0] !== "{" || tokens[tokens.length - 1] !== "}") return null;
    var result = Object.create(null);
    for (var i = 1; i < tokens.length - 1; i += 4) {
      var key = /^['"]/.test(tokens[i]) ? looseValue(tokens[i]) : tokens[i];
      var value = looseValue(tokens[i + 2] || "");
      var next = tokens[i + 3];
      if (!/^['"A-Za-z_$]/.test(tokens[i]) || tokens[i + 1] !== ":" || value === undefined) return null;
      if (next !== "," && i + 3 !== tokens.length - 1) return null;
      result[key] = value;
    }
    return result;
  }

  var DEFAULT_EXCLUSION = "None of the above";

  // The text of the exclusion choice: its `text` (or `label`) key; a plain string as is.
  function exclusionText(raw) {
    if (raw === null || raw === undefined) return null;
    var parsed = parseLooseObject(raw);
    var text = parsed && (typeof parsed.text === "string" ? parsed.text : parsed.label);
    if (typeof text === "string" && text.trim()) return text.trim();
    raw = raw.trim();
    return raw && "{[".indexOf(raw.charAt(0)) < 0 ? raw : DEFAULT_EXCLUSION;
  }

  // Labels from categories / labels / label-categories: strings or {label, ...}.
  function labelList(node) {
    var names = ["categories", "labels", "label-categories"];
    for (var i = 0; i < names.length; i++) {
      if (node.hasAttribute(names[i])) return labelItems(parseJson(node.getAttribute(names[i]), []));
    }
    return [];
  }

  // A list of labels as a template gives it (attribute or script): strings or {label, ...}.
  function labelItems(items) {
    if (!Array.isArray(items)) return [];
    return items.map(function (item) {
      if (item && typeof item === "object") {
        return { label: String(item.label), text: String(item.fullDisplayName || item.label),
          short: String(item.shortDisplayName || item.label) };
      }
      return { label: String(item), text: String(item), short: String(item) };
    });
  }

  // The crowd-form a node answers to: its ancestor, or the page's one form.
  function formOf(node) {
    return node.closest("crowd-form") || pageForm();
  }

  function pageForm() {
    var form = doc.querySelector("crowd-form");
    if (form) return form;
    var owner = doc.querySelector("crowd-entity-annotation");
    return owner && owner.ownForm ? owner.ownForm : null;
  }

  function post(message) {
    window.parent.postMessage(message, "*");
  }

  function isTextEntry(node) {
    if (!node || !node.tagName) return false;
    var tag = node.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || node.isContentEditable) return true;
    if (tag !== "input") return false;
    var type = (node.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "range", "button", "submit", "reset"].indexOf(type) < 0;
  }

  var NATIVE_SKIP = ["submit", "button", "reset", "image", "file"];

  // ------------------------------------------------------------ base class

  class CrowdElement extends HTMLElement {
    connectedCallback() {
      if (this._built) return;
      this._built = true;
      this.classList.add("cl-element");
      // A value a template script set before the element was defined is an own
      // property that would hide the class's accessor: apply it once built.
      var early = Object.prototype.hasOwnProperty.call(this, "value") ? [this.value] : null;
      if (early) delete this.value;
      this.build();
      if (early) this.value = early[0];
    }
    build() {}
    get fieldName() { return this.getAttribute("name") || ""; }
    get isRequired() { return this.hasAttribute("required"); }
    takeChildren(selector) {
      var found = [];
      Array.prototype.slice.call(this.children).forEach(function (child) {
        if (child.matches(selector)) found.push(child);
      });
      return found;
    }
    describe() {
      return this.getAttribute("label") || this.getAttribute("header") || this.fieldName;
    }
    markInvalid(invalid) {
      this.classList.toggle("cl-invalid", !!invalid);
    }
    // What the element answers, for template scripts that check it before submit
    // (AWS's elements call it value, and _submittableValue).
    get value() { return this.answerValue ? this.answerValue() : undefined; }
    set value(_) {}
    get _submittableValue() { return this.value; }
  }

  // ------------------------------------------------------------ crowd-form

  class CrowdForm extends CrowdElement {
    build() {
      var self = this;
      var panel = instructionsPanel(this);
      this._alert = el("div", { className: "cl-form-alert", role: "alert", hidden: true });
      this.insertBefore(this._alert, this.firstChild);
      if (panel) this.insertBefore(panel, this.firstChild);
      if (!this.querySelector('crowd-button[form-action="submit"]')) {
        var button = el("button", { type: "button", className: "cl-button cl-primary cl-submit", text: "Submit" });
        button.addEventListener("click", function () { self.submit(); });
        this.appendChild(el("div", { className: "cl-form-footer" }, [
          button, el("span", { className: "cl-hint", text: "Enter submits \u00b7 S skips" }),
        ]));
      }
    }
    // The nodes this form answers for: its own, and those of the element that made
    // it (a crowd-entity-annotation used without a crowd-form brings its own form).
    scope(selector) {
      var found = Array.prototype.slice.call(this.querySelectorAll(selector));
      if (!this.owner) return found;
      var owned = Array.prototype.slice.call(this.owner.querySelectorAll(selector));
      return (this.owner.matches(selector) ? [this.owner] : []).concat(owned, found);
    }
    // The form's native <form>, as AWS's crowd-form has one: templates append to it.
    get form() {
      if (!this._native) {
        var self = this;
        this._native = el("form", { className: "cl-native-form", novalidate: true });
        this._native.addEventListener("submit", function (event) { event.preventDefault(); self.submit(); });
        var footer = this.querySelector(":scope > .cl-form-footer");
        this.insertBefore(this._native, footer);
      }
      return this._native;
    }
    fields() {
      return this.scope("*").filter(function (node) {
        return typeof node.crowdAnswer === "function";
      });
    }
    nativeFields() {
      return this.scope("input[name], textarea[name], select[name]").filter(
        function (node) {
          return !node.hasAttribute("data-cl-internal") && !node.disabled &&
            NATIVE_SKIP.indexOf((node.getAttribute("type") || "").toLowerCase()) < 0;
        });
    }
    answer() {
      var content = {};
      this.fields().forEach(function (field) {
        (field.crowdAnswer() || []).forEach(function (pair) {
          var old = content[pair[0]];
          if (old && typeof old === "object" && typeof pair[1] === "object" && !Array.isArray(old)) {
            content[pair[0]] = Object.assign({}, old, pair[1]);
          } else {
            content[pair[0]] = pair[1];
          }
        });
      });
      this.nativeFields().forEach(function (node) {
        var type = (node.getAttribute("type") || "").toLowerCase();
        if ((type === "checkbox" || type === "radio") && !node.checked) return;
        content[node.name] = node.value;
      });
      return content;
    }
    problems() {
      var found = [];
      this.fields().forEach(function (field) {
        var problem = field.crowdProblem ? field.crowdProblem() : null;
        field.markInvalid(problem);
        if (problem) found.push(problem);
      });
      var form = this;
      this.nativeFields().forEach(function (node) {
        if (!node.required) return;
        var type = (node.getAttribute("type") || "").toLowerCase();
        var empty = type === "checkbox" || type === "radio"
          ? !form.scope('input[name="' + CSS.escape(node.name) + '"]:checked').length
          : node.value === "";
        if (empty && found.indexOf(node.name + " is required") < 0) found.push(node.name + " is required");
      });
      return found;
    }
    showProblems(problems) {
      this._alert.textContent = "";
      this._alert.hidden = problems.length === 0;
      if (!problems.length) return;
      this._alert.appendChild(el("strong", { text: "Please finish the task before submitting:" }));
      var list = el("ul");
      problems.forEach(function (p) { list.appendChild(el("li", { text: p })); });
      this._alert.appendChild(list);
    }
    submit() {
      if (this._sent) return false;
      var problems = this.problems();
      this.showProblems(problems);
      if (problems.length) return false;
      // Templates may veto with crowd-form.onsubmit = e => e.preventDefault(). A
      // handler that throws vetoes too: the template's own check did not pass.
      var event = new Event("submit", { cancelable: true });
      var failure = null;
      var caught = function (error) { failure = failure || error.message || "an error"; };
      window.addEventListener("error", caught);
      var allowed;
      try {
        allowed = this.dispatchEvent(event);
      } finally {
        window.removeEventListener("error", caught);
      }
      if (failure) {
        this.showProblems(["The task's own check failed (" + failure + "); tell the task's owner, or skip it."]);
        return false;
      }
      if (!allowed) return false;
      this._sent = true;
      this.setAttribute("submitted", "");
      post({ type: SUBMIT, answerContent: this.answer() });
      return true;
    }
    reset() {
      this.fields().forEach(function (field) { if (field.crowdReset) field.crowdReset(); field.markInvalid(false); });
      this.showProblems([]);
    }
    focusFirst() {
      this._sent = false;
      this.removeAttribute("submitted");
      var target = this.scope('.cl-choice[aria-checked="true"]')[0] ||
        this.scope("input:not([type=hidden]), textarea, select, button, [tabindex]")[0];
      if (target) target.focus();
    }
  }

  // ------------------------------------------------- layout & text elements

  class CrowdButton extends CrowdElement {
    build() {
      var self = this;
      var variant = this.getAttribute("variant") || "normal";
      var button = el("button", { type: "button", className: "cl-button cl-" + variant, disabled: this.hasAttribute("disabled") });
      while (this.firstChild) button.appendChild(this.firstChild);
      this.appendChild(button);
      button.addEventListener("click", function () { self.act(); });
    }
    act() {
      var action = this.getAttribute("form-action");
      var form = formOf(this);
      if (action === "submit" && form) form.submit();
      else if (action === "reset" && form) form.reset();
      else if (action === "skip") post({ type: SKIP });
    }
  }

  class CrowdCard extends CrowdElement {
    build() {
      var body = el("div", { className: "cl-card-body" });
      while (this.firstChild) body.appendChild(this.firstChild);
      if (this.getAttribute("image")) {
        this.appendChild(el("img", { className: "cl-card-image", src: this.getAttribute("image"), alt: "" }));
      }
      if (this.getAttribute("heading")) {
        this.appendChild(el("div", { className: "cl-card-heading", text: this.getAttribute("heading") }));
      }
      this.appendChild(body);
    }
  }

  class CrowdAlert extends CrowdElement {
    build() {
      var self = this;
      this.setAttribute("role", "alert");
      this.classList.add("cl-alert-" + (this.getAttribute("type") || "info"));
      if (this.hasAttribute("dismissible")) {
        var close = el("button", { type: "button", className: "cl-dismiss", "aria-label": "Dismiss", text: "\u00d7" });
        close.addEventListener("click", function () { self.hidden = true; });
        this.appendChild(close);
      }
    }
  }

  function instructionsPanel(host, title) {
    var shorts = host.takeChildren("short-instructions, short-summary");
    var fulls = host.takeChildren("full-instructions, detailed-instructions, positive-example, negative-example");
    if (!shorts.length && !fulls.length) return null;
    var panel = el("aside", { className: "cl-instructions" });
    shorts.forEach(function (node) { panel.appendChild(node); });
    if (fulls.length) {
      var full = el("div", { className: "cl-full-instructions", hidden: true });
      fulls.forEach(function (node) {
        if (node.getAttribute("header")) full.appendChild(el("h3", { text: node.getAttribute("header") }));
        full.appendChild(node);
      });
      var toggle = el("button", { type: "button", className: "cl-link", text: title || "View full instructions" });
      toggle.addEventListener("click", function () { full.hidden = !full.hidden; });
      panel.appendChild(toggle);
      panel.appendChild(full);
    }
    return panel;
  }

  class CrowdInstructions extends CrowdElement {
    build() {
      var text = this.getAttribute("link-text") || "Instructions";
      var shorts = this.takeChildren("short-summary, short-instructions");
      var fulls = this.takeChildren("detailed-instructions, full-instructions, positive-example, negative-example");
      var panel = el("div", { className: "cl-instructions-panel", hidden: true });
      if (this.getAttribute("title")) panel.appendChild(el("h3", { text: this.getAttribute("title") }));
      shorts.concat(fulls).forEach(function (node) { panel.appendChild(node); });
      var toggle = el("button", { type: "button", className: "cl-" + (this.getAttribute("link-type") || "link"), text: text });
      toggle.addEventListener("click", function () { panel.hidden = !panel.hidden; });
      this.appendChild(toggle);
      this.appendChild(panel);
    }
  }

