/* Simple answer fields: inputs, text areas, switches, radio groups, sliders. */
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
    get value() { return this._input ? this._input.value : ""; }
    set value(text) { if (this._input) this._input.value = text === null || text === undefined ? "" : String(text); }
    // A2I leaves an input nobody filled in out of the answer.
    crowdAnswer() { return this.fieldName && this._input.value !== "" ? [[this.fieldName, this._input.value]] : []; }
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
    get value() { return this._input ? this._input.value : ""; }
    set value(text) { if (this._input) this._input.value = text === null || text === undefined ? "" : String(text); }
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
    get value() { return this._input ? Number(this._input.value) : undefined; }
    set value(number) { if (this._input) this._input.value = String(number); }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, Number(this._input.value)]] : []; }
    crowdProblem() { return null; }
    crowdReset() { this._input.value = this._initial; this._shown.textContent = this._initial; }
  }

