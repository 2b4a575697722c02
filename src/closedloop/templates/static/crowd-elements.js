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
 */
(function () {
  "use strict";

  var SUBMIT = "closedloop:submit";
  var SKIP = "closedloop:skip";
  var FOCUS = "closedloop:focus";
  var SVG = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false)
        node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  function parseJson(text, fallback) {
    if (text === null || text === undefined || text === "") return fallback;
    try {
      return JSON.parse(text);
    } catch (e) {
      // AWS's samples often write ['a', 'b']: read single-quoted strings too.
      try {
        return JSON.parse(text.replace(/'((?:[^'\\]|\\.)*)'/g, function (_, inner) {
          return JSON.stringify(inner.replace(/\\'/g, "'"));
        }));
      } catch (e2) {
        return fallback;
      }
    }
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
      if (node.hasAttribute(names[i])) {
        var items = parseJson(node.getAttribute(names[i]), []);
        if (!Array.isArray(items)) return [];
        return items.map(function (item) {
          if (item && typeof item === "object") {
            return { label: String(item.label), text: item.fullDisplayName || item.shortDisplayName || item.label,
              short: item.shortDisplayName || item.label };
          }
          return { label: String(item), text: String(item), short: String(item) };
        });
      }
    }
    return [];
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
      this.build();
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
    fields() {
      return Array.prototype.filter.call(this.querySelectorAll("*"), function (node) {
        return typeof node.crowdAnswer === "function";
      });
    }
    nativeFields() {
      return Array.prototype.filter.call(this.querySelectorAll("input[name], textarea[name], select[name]"),
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
          ? !form.querySelector('input[name="' + CSS.escape(node.name) + '"]:checked')
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
      // Templates may veto with crowd-form.onsubmit = e => e.preventDefault().
      var event = new Event("submit", { cancelable: true });
      if (!this.dispatchEvent(event)) return false;
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
      var target = this.querySelector('.cl-choice[aria-checked="true"]') ||
        this.querySelector("input:not([type=hidden]), textarea, select, button, [tabindex]");
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
      var form = this.closest("crowd-form");
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

  // ------------------------------------------------------ simple fields

  // Compiles a template's pattern attribute; a broken pattern is ignored, not fatal.
  function patternOf(source, anchored) {
    if (!source) return null;
    try {
      return new RegExp(anchored ? "^(?:" + source + ")$" : source);
    } catch (e) {
      return null;
    }
  }

  class CrowdInput extends CrowdElement {
    build() {
      var self = this;
      this._initial = this.getAttribute("value") || "";
      this._allowed = patternOf(this.getAttribute("allowed-pattern"), false);
      this._pattern = patternOf(this.getAttribute("pattern"), true);
      this._live = this.hasAttribute("auto-validate");
      var id = "cl-" + Math.random().toString(36).slice(2);
      this._input = el("input", {
        id: id, "data-cl-internal": true, type: this.getAttribute("type") || "text",
        placeholder: this.getAttribute("placeholder"), value: this._initial,
        maxlength: this.getAttribute("max-length"), minlength: this.getAttribute("min-length"),
        disabled: this.hasAttribute("disabled"), required: this.isRequired, "aria-describedby": id + "-error",
      });
      this._error = el("div", { id: id + "-error", className: "cl-input-error", hidden: true });
      if (this.getAttribute("label")) this.appendChild(el("label", { "for": id, text: this.getAttribute("label") }));
      this.appendChild(this._input);
      this.appendChild(this._error);
      if (this.hasAttribute("auto-focus") || this.hasAttribute("autofocus")) this._input.autofocus = true;
      this._input.addEventListener("input", function (event) {
        if (self._live && self._allowed && !event.isComposing) self.dropDisallowed();
        if (self._live) self.showError(self.validity());
      });
      this._input.addEventListener("blur", function () { if (self._live) self.showError(self.validity()); });
    }
    // allowed-pattern with auto-validate: characters that do not match are dropped as typed.
    dropDisallowed() {
      var input = this._input, allowed = this._allowed;
      var keep = function (text) {
        return Array.from(text).filter(function (c) { return allowed.test(c); }).join("");
      };
      var value = input.value, caret = input.selectionStart;
      var kept = keep(value);
      if (kept === value) return;
      input.value = kept;
      if (caret !== null) {
        var at = keep(value.slice(0, caret)).length;
        input.setSelectionRange(at, at);
      }
    }
    // Why the value cannot be submitted, naming the field; null when it can.
    validity() {
      var value = this._input.value, name = this.describe();
      var min = Number(this.getAttribute("min-length")), max = Number(this.getAttribute("max-length"));
      var allowed = this._allowed;
      if (value === "") return this.isRequired ? name + " is required" : null;
      if (min && value.length < min) return name + " needs at least " + min + " characters";
      if (max && value.length > max) return name + " allows at most " + max + " characters";
      var offPattern = (allowed && !Array.from(value).every(function (c) { return allowed.test(c); })) ||
        (this._pattern && !this._pattern.test(value));
      return offPattern ? name + " is not in the expected format" : null;
    }
    showError(problem) {
      this._error.textContent = problem ? this.getAttribute("error-message") || problem : "";
      this._error.hidden = !problem;
      this._input.setAttribute("aria-invalid", String(!!problem));
      this.markInvalid(problem);
    }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, this._input.value]] : []; }
    crowdProblem() {
      var problem = this.validity();
      this.showError(problem);
      // Once a submit was refused, the message follows the worker's typing.
      if (problem) this._live = true;
      return problem;
    }
    crowdReset() { this._input.value = this._initial; this._live = this.hasAttribute("auto-validate"); this.showError(null); }
  }

  class CrowdTextArea extends CrowdElement {
    build() {
      var self = this;
      var initial = this.getAttribute("value") || this.textContent.trim();
      this.textContent = "";
      this._initial = initial;
      var id = "cl-" + Math.random().toString(36).slice(2);
      this._input = el("textarea", {
        id: id, "data-cl-internal": true, rows: this.getAttribute("rows") || "3",
        placeholder: this.getAttribute("placeholder"), maxlength: this.getAttribute("max-length"),
        disabled: this.hasAttribute("disabled"), required: this.isRequired,
      });
      this._input.value = initial;
      if (this.getAttribute("label")) this.appendChild(el("label", { "for": id, text: this.getAttribute("label") }));
      this.appendChild(this._input);
      if (this.hasAttribute("char-counter")) {
        var counter = el("div", { className: "cl-counter" });
        var update = function () {
          counter.textContent = self._input.value.length + (self.getAttribute("max-length") ? " / " + self.getAttribute("max-length") : "");
        };
        this._input.addEventListener("input", update);
        update();
        this.appendChild(counter);
      }
    }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, this._input.value]] : []; }
    crowdProblem() { return this.isRequired && this._input.value === "" ? this.describe() + " is required" : null; }
    crowdReset() { this._input.value = this._initial; }
  }

  // A checkbox-like switch: {"<name>": {"<value or on>": true|false}}.
  class SwitchElement extends CrowdElement {
    build() {
      this._initial = this.hasAttribute("checked");
      var label = el("label", { className: "cl-switch" });
      this._input = el("input", { type: this.inputType(), "data-cl-internal": true, disabled: this.hasAttribute("disabled") });
      this._input.checked = this._initial;
      var text = el("span");
      while (this.firstChild) text.appendChild(this.firstChild);
      label.appendChild(this._input);
      label.appendChild(text);
      this.appendChild(label);
      this._input.addEventListener("change", this.changed.bind(this));
    }
    inputType() { return "checkbox"; }
    changed() {}
    get checked() { return this._input.checked; }
    set checked(value) { this._input.checked = !!value; }
    crowdAnswer() {
      if (!this.fieldName) return [];
      var value = {};
      value[this.getAttribute("value") || "on"] = this._input.checked;
      return [[this.fieldName, value]];
    }
    crowdProblem() {
      return this.isRequired && !this._input.checked ? (this.textContent.trim() || this.fieldName) + " must be checked" : null;
    }
    crowdReset() { this._input.checked = this._initial; }
    describe() { return this.textContent.trim() || this.fieldName; }
  }

  class CrowdCheckbox extends SwitchElement {}

  class CrowdRadioButton extends SwitchElement {
    inputType() { return "radio"; }
    changed() {
      var group = this.closest("crowd-radio-group");
      var self = this;
      if (!group || !this._input.checked) return;
      group.querySelectorAll("crowd-radio-button").forEach(function (other) {
        if (other !== self && other._input) other._input.checked = false;
      });
    }
    crowdProblem() { return null; }
  }

  class CrowdRadioGroup extends CrowdElement {
    build() { this.setAttribute("role", "radiogroup"); }
    crowdAnswer() { return []; }
    crowdProblem() {
      if (!this.isRequired) return null;
      var any = Array.prototype.some.call(this.querySelectorAll("crowd-radio-button"), function (b) { return b.checked; });
      return any ? null : (this.getAttribute("label") || "One of the options") + " must be chosen";
    }
  }

  class CrowdToggleButton extends CrowdElement {
    build() {
      var self = this;
      this._initial = this.hasAttribute("checked");
      this._button = el("button", { type: "button", className: "cl-toggle", "aria-pressed": String(this._initial),
        disabled: this.hasAttribute("disabled") });
      while (this.firstChild) this._button.appendChild(this.firstChild);
      if (!this._button.textContent.trim()) this._button.textContent = this.getAttribute("value") || this.fieldName;
      this.appendChild(this._button);
      this._button.addEventListener("click", function () { self.checked = !self.checked; });
    }
    get checked() { return this._button.getAttribute("aria-pressed") === "true"; }
    set checked(value) { this._button.setAttribute("aria-pressed", String(!!value)); }
    crowdAnswer() {
      if (!this.fieldName) return [];
      var value = {};
      value[this.getAttribute("value") || "on"] = this.checked;
      return [[this.fieldName, value]];
    }
    crowdProblem() { return this.isRequired && !this.checked ? this.fieldName + " must be switched on" : null; }
    crowdReset() { this.checked = this._initial; }
  }

  class CrowdSlider extends CrowdElement {
    build() {
      var self = this;
      var min = this.getAttribute("min") || "0", max = this.getAttribute("max") || "100";
      this._initial = this.getAttribute("value") || min;
      this._input = el("input", { type: "range", "data-cl-internal": true, min: min, max: max,
        step: this.getAttribute("step") || "1", value: this._initial, disabled: this.hasAttribute("disabled"),
        "aria-label": this.getAttribute("label") || this.fieldName });
      this._shown = el("output", { className: "cl-slider-value", text: this._initial });
      if (this.getAttribute("label")) this.appendChild(el("label", { text: this.getAttribute("label") }));
      this.appendChild(this._input);
      this.appendChild(this._shown);
      this._input.addEventListener("input", function () { self._shown.textContent = self._input.value; });
    }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, Number(this._input.value)]] : []; }
    crowdProblem() { return null; }
    crowdReset() { this._input.value = this._initial; this._shown.textContent = this._initial; }
  }

  // ------------------------------------------------------------ classifiers

  class Classifier extends CrowdElement {
    multi() { return false; }
    target() {
      var targets = this.takeChildren("classification-target");
      var box = el("div", { className: "cl-target" });
      targets.forEach(function (node) { box.appendChild(node); });
      return box;
    }
    build() {
      this._labels = labelList(this);
      this._chosen = [];
      this._excluded = false;
      this._exclusion = this.multi() ? exclusionText(this.getAttribute("exclusion-category")) : null;
      var initial = this.getAttribute("value");
      if (initial && this._labels.some(function (l) { return l.label === initial; })) this._chosen = [initial];
      this._initialChosen = this._chosen.slice();
      var panel = instructionsPanel(this);
      var main = el("section", { className: "cl-main" });
      if (this.getAttribute("header")) main.appendChild(el("h2", { className: "cl-header", text: this.getAttribute("header") }));
      main.appendChild(this.target());
      this._choices = el("div", { className: "cl-choices", role: this.multi() ? "group" : "radiogroup" });
      this._labels.forEach(function (label, index) {
        this._choices.appendChild(this.choiceButton(index, label.text, { "data-label": label.label }));
      }, this);
      main.appendChild(this._choices);
      while (this.firstChild) main.insertBefore(this.firstChild, this._choices);
      if (this._exclusion !== null) main.appendChild(this.exclusionChoice());
      var layout = el("div", { className: "cl-annotator" }, [main, panel]);
      this.appendChild(layout);
      this.paint();
    }
    choiceButton(index, text, attrs) {
      var self = this;
      var button = el("button", Object.assign({ type: "button", className: "cl-choice",
        role: this.multi() ? "checkbox" : "radio" }, attrs), [
        index < 9 ? el("kbd", { text: String(index + 1) }) : null, el("span", { text: text }),
      ]);
      button.addEventListener("click", function () { self.crowdPickLabel(index); });
      return button;
    }
    // The exclusion choice sits below the categories and takes the next number key.
    exclusionChoice() {
      this._exclusionButton = this.choiceButton(this._labels.length, this._exclusion, { "data-exclusion": true });
      this._exclusionButton.classList.add("cl-exclusion");
      return el("div", { className: "cl-choices cl-exclusion-choices" }, [this._exclusionButton]);
    }
    crowdPickLabel(index) {
      if (this._exclusion !== null && index === this._labels.length) return this.toggleExclusion();
      var label = this._labels[index];
      if (!label || this._excluded) return;
      if (!this.multi()) this._chosen = [label.label];
      else if (this._chosen.indexOf(label.label) >= 0) this._chosen.splice(this._chosen.indexOf(label.label), 1);
      else this._chosen.push(label.label);
      this.paint();
      this.markInvalid(false);
    }
    toggleExclusion() {
      this._excluded = !this._excluded;
      if (this._excluded) this._chosen = [];
      this.paint();
      this.markInvalid(false);
    }
    paint() {
      var chosen = this._chosen, excluded = this._excluded;
      Array.prototype.forEach.call(this._choices.children, function (button) {
        button.setAttribute("aria-checked", String(chosen.indexOf(button.getAttribute("data-label")) >= 0));
        button.disabled = excluded;
      });
      if (this._exclusionButton) this._exclusionButton.setAttribute("aria-checked", String(excluded));
    }
    crowdAnswer() {
      if (!this.fieldName) return [];
      // A2I's docs give no output for the exclusion choice; it answers {"labels": []},
      // the same shape with no category chosen (the server accepts that only here).
      if (this.multi()) return [[this.fieldName, { labels: this._labels.map(function (l) { return l.label; })
        .filter(function (l) { return this._chosen.indexOf(l) >= 0; }, this) }]];
      return this._chosen.length ? [[this.fieldName, { label: this._chosen[0] }]] : [];
    }
    crowdProblem() {
      var needed = !this.multi() || this.isRequired || this._exclusion !== null;
      if (!needed || this._chosen.length || this._excluded) return null;
      var what = this._exclusion !== null ? "a label or \u201c" + this._exclusion + "\u201d" : "a label";
      return "Choose " + what + " for " + (this.getAttribute("header") || this.fieldName);
    }
    crowdReset() { this._chosen = this._initialChosen.slice(); this._excluded = false; this.paint(); }
  }

  class CrowdClassifier extends Classifier {}

  class CrowdClassifierMultiSelect extends Classifier {
    multi() { return true; }
  }

  class CrowdImageClassifier extends Classifier {
    target() {
      var box = el("div", { className: "cl-target" });
      box.appendChild(el("img", { className: "cl-target-image", src: this.getAttribute("src") || "", alt: this.getAttribute("header") || "image" }));
      return box;
    }
  }

  class CrowdImageClassifierMultiSelect extends CrowdImageClassifier {
    multi() { return true; }
  }

  // ------------------------------------------------------ entity annotation

  class CrowdEntityAnnotation extends CrowdElement {
    build() {
      var self = this;
      this._labels = labelList(this);
      this._current = 0;
      this._text = this.getAttribute("text") || "";
      var initial = parseJson(this.getAttribute("initial-value"), []);
      this._initial = (Array.isArray(initial) ? initial : initial.entities || []).map(function (e) {
        return { startOffset: e.startOffset, endOffset: e.endOffset, label: e.label };
      });
      this._entities = this._initial.slice();
      var panel = instructionsPanel(this);
      var main = el("section", { className: "cl-main" });
      if (this.getAttribute("header")) main.appendChild(el("h2", { className: "cl-header", text: this.getAttribute("header") }));
      this._picker = labelPicker(this);
      main.appendChild(this._picker);
      this._view = el("div", { className: "cl-entity-text", tabindex: "0" });
      main.appendChild(this._view);
      this._list = el("ul", { className: "cl-shape-list" });
      main.appendChild(this._list);
      this.appendChild(el("div", { className: "cl-annotator" }, [main, panel]));
      this._view.addEventListener("mouseup", function () { self.takeSelection(); });
      this.paint();
    }
    crowdPickLabel(index) {
      if (index >= this._labels.length) return;
      this._current = index;
      paintPicker(this._picker, index);
      this.takeSelection();
    }
    offsetOf(node, offset) {
      var walker = document.createTreeWalker(this._view, NodeFilter.SHOW_TEXT);
      var total = 0;
      while (walker.nextNode()) {
        if (walker.currentNode === node) return total + offset;
        total += walker.currentNode.textContent.length;
      }
      if (node === this._view) return offset === 0 ? 0 : this._text.length;
      return -1;
    }
    takeSelection() {
      var selection = window.getSelection();
      if (!selection || selection.isCollapsed || !selection.rangeCount) return;
      var range = selection.getRangeAt(0);
      if (!this._view.contains(range.startContainer) || !this._view.contains(range.endContainer)) return;
      var start = this.offsetOf(range.startContainer, range.startOffset);
      var end = this.offsetOf(range.endContainer, range.endOffset);
      while (start < end && /\s/.test(this._text[start])) start++;
      while (end > start && /\s/.test(this._text[end - 1])) end--;
      selection.removeAllRanges();
      if (start < 0 || end <= start || !this._labels.length) return;
      this._entities = this._entities.filter(function (e) { return e.endOffset <= start || e.startOffset >= end; });
      this._entities.push({ startOffset: start, endOffset: end, label: this._labels[this._current].label });
      this._entities.sort(function (a, b) { return a.startOffset - b.startOffset; });
      this.markInvalid(false);
      this.paint();
    }
    paint() {
      var self = this, at = 0;
      this._view.textContent = "";
      this._list.textContent = "";
      this._entities.forEach(function (entity, index) {
        if (entity.startOffset > at) self._view.appendChild(document.createTextNode(self._text.slice(at, entity.startOffset)));
        self._view.appendChild(el("mark", { className: "cl-entity", "data-label": entity.label,
          text: self._text.slice(entity.startOffset, entity.endOffset) }));
        at = entity.endOffset;
        self._list.appendChild(shapeItem(entity.label + ": " + self._text.slice(entity.startOffset, entity.endOffset), function () {
          self._entities.splice(index, 1);
          self.paint();
        }));
      });
      if (at < this._text.length) this._view.appendChild(document.createTextNode(this._text.slice(at)));
      paintPicker(this._picker, this._current);
    }
    crowdAnswer() {
      return this.fieldName ? [[this.fieldName, { entities: this._entities.map(function (e) {
        return { endOffset: e.endOffset, label: e.label, startOffset: e.startOffset };
      }) }]] : [];
    }
    crowdProblem() {
      return this.isRequired && !this._entities.length ? "Mark at least one entity in " + (this.getAttribute("header") || this.fieldName) : null;
    }
    crowdReset() { this._entities = this._initial.slice(); this.paint(); }
  }

  function labelPicker(host) {
    var picker = el("div", { className: "cl-choices cl-label-picker", role: "radiogroup" });
    host._labels.forEach(function (label, index) {
      var button = el("button", { type: "button", className: "cl-choice", role: "radio", "data-label": label.label }, [
        index < 9 ? el("kbd", { text: String(index + 1) }) : null, el("span", { text: label.text }),
      ]);
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () { host.crowdPickLabel(index); });
      picker.appendChild(button);
    });
    return picker;
  }

  function paintPicker(picker, current) {
    Array.prototype.forEach.call(picker.children, function (button, index) {
      button.setAttribute("aria-checked", String(index === current));
    });
  }

  function shapeItem(text, remove) {
    var button = el("button", { type: "button", className: "cl-remove", "aria-label": "Remove " + text, text: "\u00d7" });
    button.addEventListener("click", remove);
    return el("li", {}, [el("span", { text: text }), button]);
  }

  // ------------------------------------------------------ image annotators

  class ImageAnnotator extends CrowdElement {
    key() { return ""; }
    build() {
      var self = this;
      this._labels = labelList(this);
      this._current = 0;
      this._draft = null;
      this._initial = this.readInitial();
      this._shapes = this._initial.slice();
      var panel = instructionsPanel(this);
      var main = el("section", { className: "cl-main" });
      if (this.getAttribute("header")) main.appendChild(el("h2", { className: "cl-header", text: this.getAttribute("header") }));
      this._picker = labelPicker(this);
      main.appendChild(this._picker);
      this._image = el("img", { className: "cl-canvas-image", src: this.getAttribute("src") || "", alt: this.getAttribute("header") || "image", draggable: "false" });
      this._svg = svgEl("svg", { "class": "cl-overlay", preserveAspectRatio: "none" });
      this._stage = el("div", { className: "cl-stage" }, [this._image]);
      this._stage.appendChild(this._svg);
      main.appendChild(this._stage);
      this._tools = el("div", { className: "cl-tools" });
      this.tools(this._tools);
      main.appendChild(this._tools);
      this._list = el("ul", { className: "cl-shape-list" });
      main.appendChild(this._list);
      this.appendChild(el("div", { className: "cl-annotator" }, [main, panel]));
      this._image.addEventListener("load", function () { self.paint(); });
      this._svg.addEventListener("pointerdown", function (event) { self.pointer("down", event); });
      this._svg.addEventListener("pointermove", function (event) { self.pointer("move", event); });
      this._svg.addEventListener("pointerup", function (event) { self.pointer("up", event); });
      this.paint();
    }
    tools(box) {
      var self = this;
      var undo = el("button", { type: "button", className: "cl-button", text: "Undo" });
      undo.addEventListener("click", function () { self._draft = null; self._shapes.pop(); self.paint(); });
      box.appendChild(undo);
    }
    readInitial() {
      var value = parseJson(this.getAttribute("initial-value"), []);
      if (value && !Array.isArray(value)) value = value[this.key()] || [];
      return Array.isArray(value) ? value : [];
    }
    size() {
      return { width: this._image.naturalWidth || 0, height: this._image.naturalHeight || 0 };
    }
    point(event) {
      var rect = this._svg.getBoundingClientRect();
      var size = this.size();
      var x = (event.clientX - rect.left) * size.width / Math.max(rect.width, 1);
      var y = (event.clientY - rect.top) * size.height / Math.max(rect.height, 1);
      return { x: Math.round(Math.min(Math.max(x, 0), size.width)), y: Math.round(Math.min(Math.max(y, 0), size.height)) };
    }
    currentLabel() { return this._labels.length ? this._labels[this._current].label : ""; }
    crowdPickLabel(index) {
      if (index >= this._labels.length) return;
      this._current = index;
      paintPicker(this._picker, index);
    }
    pointer() {}
    crowdEnter() { return false; }
    finishDraft(minimum) {
      if (!this._draft || this._draft.vertices.length < minimum) return false;
      this._shapes.push(this._draft);
      this._draft = null;
      this.markInvalid(false);
      this.paint();
      return true;
    }
    paint() {
      var size = this.size(), self = this;
      this._svg.setAttribute("viewBox", "0 0 " + (size.width || 1) + " " + (size.height || 1));
      this._svg.textContent = "";
      this._list.textContent = "";
      this._shapes.forEach(function (shape, index) {
        self.draw(shape, false);
        self._list.appendChild(shapeItem(self.describeShape(shape), function () {
          self._shapes.splice(index, 1);
          self.paint();
        }));
      });
      if (this._draft) this.draw(this._draft, true);
      paintPicker(this._picker, this._current);
    }
    describeShape(shape) {
      var points = (shape.vertices || []).map(function (v) { return "(" + v.x + ", " + v.y + ")"; });
      return shape.label + " " + points.join(" ");
    }
    drawVertices(shape, tag) {
      var points = shape.vertices.map(function (v) { return v.x + "," + v.y; }).join(" ");
      this._svg.appendChild(svgEl(tag, { points: points, "class": "cl-shape", "vector-effect": "non-scaling-stroke" }));
      var self = this;
      shape.vertices.forEach(function (v) {
        self._svg.appendChild(svgEl("circle", { cx: v.x, cy: v.y, r: Math.max(self.size().width / 150, 2), "class": "cl-vertex" }));
      });
    }
    crowdAnswer() {
      if (!this.fieldName) return [];
      var value = { inputImageProperties: this.size() };
      value[this.key()] = this._shapes.map(this.output, this);
      return [[this.fieldName, value]];
    }
    output(shape) {
      return { label: shape.label, vertices: shape.vertices.map(function (v) { return { x: v.x, y: v.y }; }) };
    }
    crowdProblem() {
      return this.isRequired && !this._shapes.length ? "Draw at least one shape on " + (this.getAttribute("header") || this.fieldName) : null;
    }
    crowdReset() { this._shapes = this._initial.slice(); this._draft = null; this.paint(); }
  }

  class CrowdBoundingBox extends ImageAnnotator {
    key() { return "boundingBoxes"; }
    pointer(kind, event) {
      if (kind === "down") {
        this._svg.setPointerCapture && this._svg.setPointerCapture(event.pointerId);
        this._start = this.point(event);
        this._draft = { label: this.currentLabel(), left: this._start.x, top: this._start.y, width: 0, height: 0 };
      } else if (this._draft && this._start) {
        var p = this.point(event);
        this._draft.left = Math.min(p.x, this._start.x);
        this._draft.top = Math.min(p.y, this._start.y);
        this._draft.width = Math.abs(p.x - this._start.x);
        this._draft.height = Math.abs(p.y - this._start.y);
        if (kind === "up") {
          if (this._draft.width > 0 && this._draft.height > 0) this._shapes.push(this._draft);
          this._draft = null;
          this._start = null;
          this.markInvalid(false);
        }
      } else {
        return;
      }
      this.paint();
    }
    draw(box) {
      this._svg.appendChild(svgEl("rect", { x: box.left, y: box.top, width: box.width, height: box.height,
        "class": "cl-shape", "vector-effect": "non-scaling-stroke" }));
    }
    describeShape(box) { return box.label + " " + box.width + "\u00d7" + box.height + " at (" + box.left + ", " + box.top + ")"; }
    output(box) { return { height: box.height, label: box.label, left: box.left, top: box.top, width: box.width }; }
  }

  class CrowdKeypoint extends ImageAnnotator {
    key() { return "keypoints"; }
    pointer(kind, event) {
      if (kind !== "up") return;
      var p = this.point(event);
      this._shapes.push({ label: this.currentLabel(), x: p.x, y: p.y });
      this.markInvalid(false);
      this.paint();
    }
    draw(point) {
      this._svg.appendChild(svgEl("circle", { cx: point.x, cy: point.y, r: Math.max(this.size().width / 100, 3), "class": "cl-keypoint" }));
    }
    describeShape(point) { return point.label + " (" + point.x + ", " + point.y + ")"; }
    output(point) { return { label: point.label, x: point.x, y: point.y }; }
  }

  // Polygons, lines and polylines: clicks add vertices.
  class VertexAnnotator extends ImageAnnotator {
    minimum() { return 2; }
    maximum() { return Infinity; }
    tools(box) {
      var self = this;
      super.tools(box);
      if (this.maximum() === Infinity) {
        var finish = el("button", { type: "button", className: "cl-button", text: "Finish shape" });
        finish.addEventListener("click", function () { self.finishDraft(self.minimum()); });
        box.appendChild(finish);
      }
    }
    pointer(kind, event) {
      if (kind !== "up") return;
      var p = this.point(event);
      if (!this._draft) this._draft = { label: this.currentLabel(), vertices: [] };
      var vertices = this._draft.vertices;
      var near = this.size().width / 60 + 2;
      var closeTo = function (v) { return v && Math.abs(v.x - p.x) <= near && Math.abs(v.y - p.y) <= near; };
      // Clicking the first vertex (polygon) or the last one (polyline) ends the shape.
      if (vertices.length >= this.minimum() && (closeTo(vertices[0]) || closeTo(vertices[vertices.length - 1]))) {
        this.finishDraft(this.minimum());
        return;
      }
      vertices.push(p);
      if (vertices.length >= this.maximum()) this.finishDraft(this.minimum());
      else this.paint();
    }
    crowdEnter() { return this.finishDraft(this.minimum()); }
    draw(shape, draft) { this.drawVertices(shape, draft ? "polyline" : this.tag()); }
    tag() { return "polyline"; }
  }

  class CrowdPolygon extends VertexAnnotator {
    key() { return "polygons"; }
    minimum() { return 3; }
    tag() { return "polygon"; }
  }

  class CrowdLine extends VertexAnnotator {
    key() { return "lines"; }
    maximum() { return 2; }
  }

  class CrowdPolyline extends VertexAnnotator {
    key() { return "polylines"; }
  }

  // ------------------------------------------------------------- keyboard

  function activeAnnotator(form) {
    var candidates = Array.prototype.filter.call(form.querySelectorAll("*"), function (node) {
      return typeof node.crowdPickLabel === "function";
    });
    var focused = candidates.filter(function (node) { return node.contains(document.activeElement); });
    return focused[0] || candidates.filter(function (node) { return node === activeAnnotator.last; })[0] || candidates[0];
  }

  document.addEventListener("pointerdown", function (event) {
    var node = event.target && event.target.closest ? event.target.closest("*") : null;
    while (node && typeof node.crowdPickLabel !== "function") node = node.parentElement;
    if (node) activeAnnotator.last = node;
  }, true);

  document.addEventListener("keydown", function (event) {
    var form = document.querySelector("crowd-form");
    if (!form || event.altKey || event.metaKey || event.isComposing) return;
    var typing = isTextEntry(event.target);
    var inTextArea = event.target && event.target.tagName && event.target.tagName.toLowerCase() === "textarea";
    if (event.key === "Enter" && !event.shiftKey && (!inTextArea || event.ctrlKey)) {
      event.preventDefault();
      var annotator = !typing && activeAnnotator(form);
      if (annotator && annotator.crowdEnter && annotator.crowdEnter()) return;
      form.submit();
    } else if (!typing && !event.ctrlKey && /^[1-9]$/.test(event.key)) {
      var target = activeAnnotator(form);
      if (target) { event.preventDefault(); target.crowdPickLabel(Number(event.key) - 1); }
    } else if (!typing && !event.ctrlKey && (event.key === "s" || event.key === "S")) {
      event.preventDefault();
      post({ type: SKIP });
    }
  });

  // The host may ask for focus, or press Submit for the reviewer (its own button or Enter).
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data) return;
    var form = document.querySelector("crowd-form");
    if (event.data.type === FOCUS) {
      window.focus();
      if (form && form.focusFirst) form.focusFirst();
    } else if (event.data.type === SUBMIT && form && form.submit) {
      form.submit();
    }
  });

  // ------------------------------------------------------------- register

  var elements = {
    "crowd-form": CrowdForm,
    "crowd-button": CrowdButton,
    "crowd-card": CrowdCard,
    "crowd-alert": CrowdAlert,
    "crowd-instructions": CrowdInstructions,
    "crowd-input": CrowdInput,
    "crowd-text-area": CrowdTextArea,
    "crowd-checkbox": CrowdCheckbox,
    "crowd-radio-group": CrowdRadioGroup,
    "crowd-radio-button": CrowdRadioButton,
    "crowd-toggle-button": CrowdToggleButton,
    "crowd-slider": CrowdSlider,
    "crowd-classifier": CrowdClassifier,
    "crowd-classifier-multi-select": CrowdClassifierMultiSelect,
    "crowd-image-classifier": CrowdImageClassifier,
    "crowd-image-classifier-multi-select": CrowdImageClassifierMultiSelect,
    "crowd-entity-annotation": CrowdEntityAnnotation,
    "crowd-bounding-box": CrowdBoundingBox,
    "crowd-keypoint": CrowdKeypoint,
    "crowd-polygon": CrowdPolygon,
    "crowd-line": CrowdLine,
    "crowd-polyline": CrowdPolyline,
  };
  Object.keys(elements).forEach(function (tag) {
    if (!customElements.get(tag)) customElements.define(tag, elements[tag]);
  });
  document.documentElement.setAttribute("data-crowd-ready", "");
  document.dispatchEvent(new Event("all-crowd-elements-ready"));
})();
