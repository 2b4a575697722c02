/* The classifiers: single and multi-select, for text and for images. */
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
      // The preselected label: value, or initial-value as AWS's A2I samples write it
      // (a multi-select takes a list there).
      var given = this.hasAttribute("value") ? this.getAttribute("value") : this.getAttribute("initial-value");
      var wanted = !given ? [] : this.multi() ? [].concat(parseJson(given, given)) : [given];
      this._chosen = this._labels.map(function (l) { return l.label; })
        .filter(function (l) { return wanted.indexOf(l) >= 0; }).slice(0, this.multi() ? undefined : 1);
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
    answerValue() {
      // A2I's docs give no output for the exclusion choice; it answers {"labels": []},
      // the same shape with no category chosen (the server accepts that only here).
      if (this.multi()) return { labels: this._labels.map(function (l) { return l.label; })
        .filter(function (l) { return this._chosen.indexOf(l) >= 0; }, this) };
      return this._chosen.length ? { label: this._chosen[0] } : undefined;
    }
    crowdAnswer() {
      var value = this.answerValue();
      return this.fieldName && value !== undefined ? [[this.fieldName, value]] : [];
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

