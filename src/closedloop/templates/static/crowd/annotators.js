/* Entity annotation and the image annotators (boxes, keypoints, polygons, lines). */
  // ------------------------------------------------------ entity annotation

  // Annotators' labels may be set by a template script: element.labels = ["a", "b"].
  var labelsProperty = {
    get: function () { return this._labels ? this._labels.map(function (l) { return l.label; }) : []; },
    set: function (items) {
      this._labels = labelItems(items);
      this._current = 0;
      if (!this._picker) return;
      var picker = labelPicker(this);
      this._picker.replaceWith(picker);
      this._picker = picker;
      this.paint();
    },
  };

  // A property a script set before the element was defined shadows the class's own.
  function earlyLabels(element) {
    if (!Object.prototype.hasOwnProperty.call(element, "labels")) return labelList(element);
    var items = element.labels;
    delete element.labels;
    return labelItems(items);
  }

  class CrowdEntityAnnotation extends CrowdElement {
    build() {
      var self = this;
      this._labels = earlyLabels(this);
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
      if (!this.closest("crowd-form")) this.makeOwnForm();
    }
    // Used without a crowd-form, as AWS's docs show it, the element brings its own
    // form and Submit button, in an open shadow root where templates find them
    // (el.shadowRoot.querySelector("crowd-form").form). Its own content shows
    // through a slot; the page's styles are copied in for what templates move there.
    makeOwnForm() {
      var root = this.attachShadow({ mode: "open" });
      Array.prototype.forEach.call(doc.querySelectorAll("style, link[rel~=stylesheet]"), function (sheet) {
        root.appendChild(sheet.cloneNode(true));
      });
      var form = doc.createElement("crowd-form");
      form.owner = this;
      form.appendChild(doc.createElement("slot"));
      root.appendChild(form);
      this.ownForm = form;
    }
    crowdPickLabel(index) {
      if (index >= this._labels.length) return;
      this._current = index;
      paintPicker(this._picker, index);
      this.takeSelection();
    }
    offsetOf(node, offset) {
      var walker = doc.createTreeWalker(this._view, NodeFilter.SHOW_TEXT);
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
        if (entity.startOffset > at) self._view.appendChild(doc.createTextNode(self._text.slice(at, entity.startOffset)));
        self._view.appendChild(el("mark", { className: "cl-entity", "data-label": entity.label,
          text: self._text.slice(entity.startOffset, entity.endOffset) }));
        at = entity.endOffset;
        self._list.appendChild(shapeItem(entity.label + ": " + self._text.slice(entity.startOffset, entity.endOffset), function () {
          self._entities.splice(index, 1);
          self.paint();
        }));
      });
      if (at < this._text.length) this._view.appendChild(doc.createTextNode(this._text.slice(at)));
      paintPicker(this._picker, this._current);
    }
    answerValue() {
      return { entities: this._entities.map(function (e) {
        return { endOffset: e.endOffset, label: e.label, startOffset: e.startOffset };
      }) };
    }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, this.answerValue()]] : []; }
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
      this._labels = earlyLabels(this);
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
    answerValue() {
      var value = { inputImageProperties: this.size() };
      value[this.key()] = this._shapes.map(this.output, this);
      // Shapes given by initial-value are an adjustment task: say whether they changed.
      if (this.hasAttribute("initial-value")) {
        value.initialValueModified =
          JSON.stringify(value[this.key()]) !== JSON.stringify(this._initial.map(this.output, this));
      }
      return value;
    }
    crowdAnswer() { return this.fieldName ? [[this.fieldName, this.answerValue()]] : []; }
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

  Object.defineProperty(CrowdEntityAnnotation.prototype, "labels", labelsProperty);
  Object.defineProperty(ImageAnnotator.prototype, "labels", labelsProperty);
