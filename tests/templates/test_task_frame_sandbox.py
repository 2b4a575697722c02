"""A hostile task UI inside the sandboxed, CSP-protected frame reaches nothing of the host."""

from __future__ import annotations

import re
from typing import Any

import pytest
from task_host import TaskHost

pytestmark = pytest.mark.timeout(120)

PROBE = """
<script>
var report = {type: "probe"};
try { report.parentCookie = parent.document.cookie; } catch (e) { report.parentCookie = "error: " + e.name; }
try { report.ownCookie = document.cookie; } catch (e) { report.ownCookie = "error: " + e.name; }
try { report.storage = String(localStorage.length); } catch (e) { report.storage = "error: " + e.name; }
fetch("/api/secret", {credentials: "include"}).then(function (r) { return r.text(); }).then(
  function (t) { report.fetch = t; parent.postMessage(report, "*"); },
  function (e) { report.fetch = "error: " + e.name; parent.postMessage(report, "*"); });
</script>
<crowd-form><crowd-input name="note" label="Note"></crowd-input></crowd-form>
"""

INLINE = """
<script>parent.postMessage({type: "probe", ran: "inline script"}, "*")</script>
<img src="/img/a.png" onload="parent.postMessage({type: 'probe', ran: 'handler'}, '*')">
<p id="shown">{{ task.input.text }}</p>
<crowd-form><crowd-input name="note" label="Note"></crowd-input></crowd-form>
"""

HOSTILE_TEXT = (
    '<script>parent.postMessage({type: "probe", ran: "input"}, "*")</script>'
    "<img src=/img/b.png onload=\"parent.postMessage({type: 'probe'}, '*')\">"
)

VETO = """
<crowd-form><crowd-input name="code" label="Code"></crowd-input></crowd-form>
<script>
document.querySelector("crowd-form").onsubmit = function (event) {
  var code = document.querySelector("crowd-input input").value;
  if (code.length !== 4) { event.preventDefault(); document.body.dataset.veto = "yes"; }
};
</script>
"""


def open_task(
    page: Any, host: TaskHost, template: str, data: dict[str, Any], **kw: Any
) -> Any:
    page.goto(host.add(template, data, **kw))
    frame = page.frame(url=re.compile(r"/task/"))
    frame.wait_for_selector("html[data-crowd-ready]", state="attached")
    return frame


def test_template_script_cannot_read_host_cookie_storage_or_api(
    page: Any, task_host: TaskHost
) -> None:
    open_task(page, task_host, PROBE, {}, scripts=True)
    page.wait_for_function("window.messages.some(m => m.type === 'probe')")
    report = next(m for m in page.evaluate("window.messages") if m["type"] == "probe")

    assert "host-secret-cookie" in page.evaluate("document.cookie")
    assert report["parentCookie"] == "error: SecurityError"
    assert report["ownCookie"] == "error: SecurityError"
    assert report["storage"] == "error: SecurityError"
    assert report["fetch"] == "error: TypeError"
    assert task_host.api_hits == []


def test_template_scripts_and_hostile_input_do_not_run_by_default(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(page, task_host, INLINE, {"text": HOSTILE_TEXT})
    assert frame.locator("#shown").inner_text() == HOSTILE_TEXT
    frame.get_by_label("Note").fill("fine")
    page.keyboard.press("Enter")

    page.wait_for_function("window.messages.length > 0")
    assert page.evaluate("window.messages") == [
        {"type": "closedloop:submit", "answerContent": {"note": "fine"}}
    ]


def test_allowed_template_script_can_veto_a_submit(
    page: Any, task_host: TaskHost
) -> None:
    frame = open_task(page, task_host, VETO, {}, scripts=True)
    frame.get_by_label("Code").fill("12")
    page.keyboard.press("Enter")
    assert frame.locator("body").get_attribute("data-veto") == "yes"
    assert page.evaluate("window.messages") == []

    frame.get_by_label("Code").fill("1234")
    page.keyboard.press("Enter")
    page.wait_for_function("window.messages.length > 0")
    assert page.evaluate("window.messages")[0]["answerContent"] == {"code": "1234"}


# A template in the style of A2I's custom samples: the worker sorts items into
# groups in the page, and the template's own submit handler writes its answer
# as JSON into a hidden input, refusing to submit while an item is unsorted.
SORTER = """
<crowd-form>
  <div id="problem"></div>
  <ul id="unsorted">{% for item in task.input.items %}
    <li data-id="{{ item.id }}">{{ item.name }}</li>{% endfor %}
  </ul>
  <ol id="kept"></ol>
  <input type="hidden" name="sorted" id="sorted">
</crowd-form>
<script>
document.querySelectorAll("#unsorted li").forEach(function (item) {
  item.addEventListener("click", function () { document.getElementById("kept").append(item); });
});
document.querySelector("crowd-form").onsubmit = function (event) {
  if (document.querySelectorAll("#unsorted li").length > 0) {
    document.getElementById("problem").innerHTML =
      '<crowd-alert type="error">Sort every item first.</crowd-alert>';
    event.preventDefault();
    return;
  }
  var ids = Array.from(document.querySelectorAll("#kept li")).map(function (li) {
    return li.dataset.id;
  });
  document.getElementById("sorted").value = JSON.stringify({order: ids});
};
</script>
"""


def test_template_handler_writes_its_answer_into_a_hidden_input(
    page: Any, task_host: TaskHost
) -> None:
    items = [{"id": "b7", "name": "<b>bolt</b>"}, {"id": "n2", "name": "nut"}]
    frame = open_task(page, task_host, SORTER, {"items": items}, scripts=True)
    assert frame.locator("#unsorted li").first.inner_text() == "<b>bolt</b>"

    page.keyboard.press("Enter")
    frame.wait_for_selector("crowd-alert")
    assert page.evaluate("window.messages") == []

    frame.get_by_text("nut").click()
    frame.get_by_text("<b>bolt</b>").click()
    page.keyboard.press("Enter")
    page.wait_for_function("window.messages.length > 0")
    # As in A2I, a hidden input's value is submitted as the string it holds.
    assert page.evaluate("window.messages")[0]["answerContent"] == {
        "sorted": '{"order":["n2","b7"]}'
    }
