// closedloop reviewer work page: claims tasks, shows each in a sandboxed frame, and
// sends answers with fetch (CSRF header) so the next task appears without a page load.
(function () {
  "use strict";
  var SUBMIT = "closedloop:submit";
  var SKIP = "closedloop:skip";
  var FOCUS = "closedloop:focus";

  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var frame = document.getElementById("task-frame");
  var title = document.getElementById("task-title");
  var description = document.getElementById("task-description");
  var timeLeft = document.getElementById("time-left");
  var notice = document.getElementById("notice");
  var empty = document.getElementById("empty");
  var emptyMessage = document.getElementById("empty-message");
  var submitButton = document.getElementById("submit-task");
  var skipButton = document.getElementById("skip-task");
  var doneCount = document.getElementById("done-count");

  var current = null;
  var busy = false;
  var deadline = 0;
  var skew = 0;
  var answered = 0;
  var submitHint = null;

  function call(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: "The server cannot be reached; check your connection." } };
    });
  }

  function say(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  function setButtons(enabled) {
    submitButton.disabled = !enabled;
    skipButton.disabled = !enabled;
  }

  function show(task) {
    current = task;
    if (!task) {
      title.textContent = "Nothing to review";
      description.textContent = "";
      timeLeft.textContent = "–";
      frame.hidden = true;
      frame.removeAttribute("src");
      empty.hidden = false;
      setButtons(false);
      document.getElementById("back-to-queues").focus();
      return;
    }
    title.textContent = task.title || "Task";
    description.textContent = task.description || "";
    skew = Date.parse(task.serverNow) - Date.now();
    deadline = Date.parse(task.leaseExpiresAt);
    empty.hidden = true;
    frame.hidden = false;
    frame.dataset.taskId = String(task.taskId);
    frame.src = task.frameUrl;
    setButtons(true);
    tick();
  }

  function handle(result, after) {
    if (result.ok) return after(result.data);
    if (result.status === 401 || result.status === 403) {
      say(result.data.message || "Your session has ended; sign in again.");
      setButtons(false);
      return null;
    }
    say(result.data.message || "Something went wrong; try again.");
    if (result.status === 409) return loadNext(true);
    focusFrame();
    return null;
  }

  function loadNext(keepNotice) {
    if (!keepNotice) say("");
    return call("/review/api/tasks/next").then(function (result) {
      return handle(result, function (data) {
        if (!data.task) emptyMessage.textContent = "No tasks are waiting for you right now.";
        show(data.task);
      });
    });
  }

  function submit(answerContent) {
    if (!current || busy) return;
    clearTimeout(submitHint);
    busy = true;
    setButtons(false);
    call("/review/api/tasks/" + current.taskId + "/answer", { answerContent: answerContent }).then(function (result) {
      busy = false;
      return handle(result, function () {
        answered += 1;
        doneCount.textContent = String(answered);
        return loadNext();
      });
    }).then(function () { if (current) setButtons(true); });
  }

  function skip() {
    if (!current || busy) return;
    busy = true;
    setButtons(false);
    call("/review/api/tasks/" + current.taskId + "/skip").then(function (result) {
      busy = false;
      return handle(result, function (data) {
        say("");
        if (!data.task) emptyMessage.textContent = data.message || "No other task is waiting.";
        show(data.task);
      });
    }).then(function () { if (current) setButtons(true); });
  }

  function focusFrame() {
    if (!current || frame.hidden) return;
    frame.focus();
    if (frame.contentWindow) frame.contentWindow.postMessage({ type: FOCUS }, "*");
  }

  function requestSubmit() {
    if (!current || !frame.contentWindow) return;
    frame.contentWindow.postMessage({ type: SUBMIT }, "*");
    focusFrame();
    clearTimeout(submitHint);
    submitHint = setTimeout(function () {
      say("Press Enter inside the task to submit it.");
    }, 1500);
  }

  function tick() {
    if (!current) return;
    var left = Math.max(0, Math.floor((deadline - (Date.now() + skew)) / 1000));
    var minutes = Math.floor(left / 60);
    var seconds = left % 60;
    timeLeft.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    timeLeft.parentNode.classList.toggle("low", left < 60);
    if (left === 0 && !busy) {
      say("Time ran out on that task; it went back to the queue.");
      loadNext(true);
    }
  }

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || !event.data || typeof event.data !== "object") return;
    if (event.data.type === SUBMIT && event.data.answerContent && typeof event.data.answerContent === "object") {
      submit(event.data.answerContent);
    } else if (event.data.type === SKIP) {
      skip();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !current) return;
    var tag = event.target && event.target.tagName ? event.target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    if (event.key === "Enter" && tag !== "button" && tag !== "a") {
      event.preventDefault();
      requestSubmit();
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      skip();
    } else if (/^[1-9]$/.test(event.key)) {
      focusFrame();
    }
  });

  frame.addEventListener("load", function () { if (current) focusFrame(); });
  submitButton.addEventListener("click", requestSubmit);
  skipButton.addEventListener("click", skip);
  setInterval(tick, 1000);
  loadNext();
})();
