/* Keyboard handling and the registration of every element. */
  // ------------------------------------------------------------- keyboard

  function activeAnnotator(form) {
    var candidates = form.scope("*").filter(function (node) {
      return typeof node.crowdPickLabel === "function";
    });
    var focused = candidates.filter(function (node) { return node.contains(doc.activeElement()); });
    return focused[0] || candidates.filter(function (node) { return node === activeAnnotator.last; })[0] || candidates[0];
  }

  doc.addEventListener("pointerdown", function (event) {
    var node = event.target && event.target.closest ? event.target.closest("*") : null;
    while (node && typeof node.crowdPickLabel !== "function") node = node.parentElement;
    if (node) activeAnnotator.last = node;
  }, true);

  doc.addEventListener("keydown", function (event) {
    var form = pageForm();
    if (!form || event.altKey || event.metaKey || event.isComposing) return;
    // Inside a shadow root the event's target is its host; the path names the field.
    var origin = event.composedPath()[0] || event.target;
    var typing = isTextEntry(origin);
    var inTextArea = origin && origin.tagName && origin.tagName.toLowerCase() === "textarea";
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
    var form = pageForm();
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
  // The template's own handler attributes, which the page moved into scripts with
  // the nonce: bound to their elements, called as an attribute's code would be.
  // Whatever the page holds, the elements still say they are ready.
  try {
    var handlers = Array.isArray(window.__closedloopHandlers) ? window.__closedloopHandlers : [];
    handlers.forEach(function (handler) {
      var selector = "[data-cl-on-" + handler[1] + '="' + handler[0] + '"]';
      Array.prototype.forEach.call(doc.querySelectorAll(selector), function (node) {
        node.addEventListener(handler[1], function (event) {
          if (handler[2].call(node, event) === false) event.preventDefault();
        });
      });
    });
  } catch (error) {
    window.setTimeout(function () { throw error; });
  }
  doc.documentElement().setAttribute("data-crowd-ready", "");
  doc.dispatchEvent(new Event("all-crowd-elements-ready"));
