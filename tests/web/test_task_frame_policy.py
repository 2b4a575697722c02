"""The task frame as `closedloop serve` sends it to Chromium, under each CLOSEDLOOP_TEMPLATE_SCRIPTS."""

from __future__ import annotations

import io
import json
import re
import struct
import wave
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, Frame, Page
from web_helpers import PASSWORDS, ROLE, WebServer, sign_in

import closedloop.store.models_web  # noqa: F401  (tables known before Engine() runs)
from closedloop.engine import Engine
from closedloop.errors import ValidationError
from closedloop.settings import Settings
from closedloop.simulation.server import BackgroundServer
from closedloop.web.accounts import Accounts
from headless import chromium, needs_chromium

FLOW = "styled"
LOOP = "loop-0"
PICTURE = "s3://media/picture.png"
SOUND = "s3://media/sound.wav"
# Runs in every frame before the page's own code, so no violation is missed.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push({directive: e.effectiveDirective, blocked: e.blockedURI});
});
"""
STYLED = """
<style>#mark { color: rgb(1, 2, 3); }</style>
<p id="mark">Marked text</p>
<p id="gone" style="display: none">Hidden by a style attribute</p>
<img id="picture" src="{{ task.input.picture | grant_read_access }}" alt="picture">
<audio id="sound" preload="auto" src="{{ task.input.sound | grant_read_access }}"></audio>
<crowd-form><crowd-input name="note" label="Note"></crowd-input></crowd-form>
<script>document.body.dataset.templateScript = "ran";</script>
"""
STAMPED = """
<crowd-form>
  <crowd-input name="note" label="Note"></crowd-input>
  <input type="hidden" name="stamp" value="">
</crowd-form>
<div id="shown">{{ task.input.html | skip_autoescape }}</div>
<script>
document.body.dataset.templateScript = "ran";
document.querySelector("crowd-form").addEventListener("submit", function () {
  document.querySelector("input[name=stamp]").value = "filled-by-template";
});
</script>
"""
INJECTED = '<script>document.body.dataset.injected = "ran";</script>'

pytestmark = pytest.mark.timeout(180)


@dataclass
class Site:
    """A served installation with one flow, one loop and reviewer alice."""

    engine: Engine
    web: BackgroundServer

    def answer_content(self) -> dict[str, Any]:
        """The single stored answer of the loop, as the output document holds it."""
        described = self.engine.loops.describe(LOOP)
        assert described.status == "Completed"
        document = json.loads(self.engine.ctx.objects.read(described.output_uri))
        [answer] = document["humanAnswers"]
        content: dict[str, Any] = answer["answerContent"]
        return content


OpenSite = Callable[[tuple[str, ...], str, dict[str, str]], Site]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    yield context.new_page()
    context.close()


@pytest.fixture
def open_site(settings: Settings) -> Iterator[OpenSite]:
    """Serve an engine with ``template_scripts`` and a flow showing ``template``."""
    with ExitStack() as stack:

        def make(
            template_scripts: tuple[str, ...], template: str, content: dict[str, str]
        ) -> Site:
            engine = Engine(replace(settings, template_scripts=template_scripts))
            stack.callback(engine.close)
            _add_alice(engine)
            _add_flow(engine, template)
            engine.loops.start(LOOP, engine.flows.arn(FLOW), json.dumps(content))
            return Site(engine, stack.enter_context(WebServer(engine)))

        yield make


def _add_alice(engine: Engine) -> None:
    accounts = Accounts(
        engine.ctx, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    )
    engine.workforce.create_worker("alice", ["reviewers"])
    accounts.set_worker_password("alice", PASSWORDS["alice"])


def _add_flow(engine: Engine, template: str) -> None:
    engine.task_uis.create(FLOW + "-ui", template)
    engine.flows.create(
        {
            "FlowDefinitionName": FLOW,
            "RoleArn": ROLE,
            "OutputConfig": {"S3OutputPath": "s3://reviews/out"},
            "HumanLoopConfig": {
                "WorkteamArn": engine.workforce.team_arn("reviewers"),
                "HumanTaskUiArn": engine.task_uis.arn(FLOW + "-ui"),
                "TaskCount": 1,
                "TaskTitle": "Review the styled task",
                "TaskDescription": "Look at the picture and listen to the sound.",
                "TaskTimeLimitInSeconds": 600,
            },
        }
    )


def _png(width: int, height: int) -> bytes:
    rows = b"".join(b"\x00" + b"\xc0\x40\x20" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * 1600)
    return buffer.getvalue()


def _open_task_frame(page: Page, url: str) -> Frame:
    """Sign alice in, open the work page and return the task frame once it is ready."""
    page.goto(f"{url}/review/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/review/")
    page.goto(f"{url}/review/work")
    page.wait_for_function(
        "() => Boolean(document.getElementById('task-frame').dataset.taskId)"
    )
    task_id = page.get_attribute("#task-frame", "data-task-id")
    frame = page.locator("#task-frame").element_handle().content_frame()
    assert frame is not None
    frame.wait_for_url(f"**/review/tasks/{task_id}/frame")
    frame.wait_for_selector("html[data-crowd-ready]", state="attached")
    return frame


def _violations(frame: Frame) -> list[dict[str, str]]:
    found: list[dict[str, str]] = frame.evaluate("window.__violations")
    return found


@needs_chromium
def test_template_styles_pictures_and_sound_apply_but_its_script_does_not_run_by_default(
    open_site: OpenSite, page: Page
) -> None:
    site = open_site((), STYLED, {"picture": PICTURE, "sound": SOUND})
    site.engine.ctx.objects.write_atomic(PICTURE, _png(3, 2))
    site.engine.ctx.objects.write_atomic(SOUND, _wav())
    frame = _open_task_frame(page, site.web.url)

    assert frame.eval_on_selector("#mark", "e => getComputedStyle(e).color") == (
        "rgb(1, 2, 3)"
    )
    assert frame.eval_on_selector("#gone", "e => getComputedStyle(e).display") == (
        "none"
    )
    assert not frame.is_visible("#gone")
    # Settled: loaded, failed, or refused by the policy; the asserts say which.
    frame.wait_for_function(
        "() => document.getElementById('picture').complete"
        " && (document.getElementById('sound').readyState >= 1"
        " || document.getElementById('sound').error !== null"
        " || window.__violations.some(v => v.directive === 'media-src'))"
    )
    directives = {v["directive"] for v in _violations(frame)}
    assert not directives & {"img-src", "media-src", "style-src-elem", "style-src-attr"}
    assert frame.eval_on_selector("#picture", "e => e.naturalWidth") == 3
    assert frame.eval_on_selector("#sound", "e => e.error") is None
    assert frame.eval_on_selector("#sound", "e => e.readyState") >= 1
    assert frame.eval_on_selector("#sound", "e => e.duration") == pytest.approx(0.2)

    assert frame.get_attribute("body", "data-template-script") is None
    assert "script-src-elem" in directives  # the template's script, refused


@needs_chromium
def test_inline_template_script_runs_and_its_value_is_stored_but_input_script_is_not_run(
    open_site: OpenSite, page: Page
) -> None:
    site = open_site(("inline",), STAMPED, {"html": INJECTED})
    frame = _open_task_frame(page, site.web.url)
    assert frame.get_attribute("body", "data-template-script") == "ran"
    assert frame.get_attribute("body", "data-injected") is None
    assert frame.inner_text("#shown") == ""  # the input's <script> is markup, not text
    assert {"directive": "script-src-elem", "blocked": "inline"} in _violations(frame)

    frame.get_by_label("Note").fill("looks right")
    frame.get_by_label("Note").press("Enter")
    page.wait_for_function(
        "() => document.getElementById('done-count').textContent === '1'"
    )
    assert site.answer_content() == {
        "note": "looks right",
        "stamp": "filled-by-template",
    }


def test_frame_policy_names_allowed_origins_and_ignores_a_forged_host(
    open_site: OpenSite,
) -> None:
    site = open_site(("inline", "https://cdn.example.com"), STAMPED, {"html": "plain"})
    with closing(sign_in(site.web.url, "review", "alice", PASSWORDS["alice"])) as alice:
        task = _next_task(alice)
        plain = _directives(alice.get(task["frameUrl"]))
        forged = alice.get(task["frameUrl"], headers={"host": "evil;script-src *"})

    assert re.fullmatch(r"'nonce-[^']+'", plain["script-src"])  # no origin for scripts
    assert "https://cdn.example.com" in plain["style-src"].split()
    assert plain["media-src"] == f"'self' {site.web.url} blob:"
    assert forged.status_code == 200
    policy = forged.headers["content-security-policy"]
    assert "evil" not in policy
    assert "*" not in _directives(forged)["script-src"].split()
    assert _directives(forged)["media-src"] == "'self' blob:"


HANDLED = """
<crowd-form><crowd-input name="note" label="Note"></crowd-input></crowd-form>
<button type="button" onclick="document.body.dataset.clicked = 'yes'">Mark</button>
<button type="button" onclick="say('{{ task.input.html }}')">Echo</button>
"""


@pytest.mark.parametrize("scripts", [("inline",), ()])
def test_template_handler_attributes_are_served_as_nonce_scripts_only_with_scripts(
    open_site: OpenSite, scripts: tuple[str, ...]
) -> None:
    site = open_site(scripts, HANDLED, {"html": "plain"})
    with closing(sign_in(site.web.url, "review", "alice", PASSWORDS["alice"])) as alice:
        frame = alice.get(_next_task(alice)["frameUrl"])

    assert re.fullmatch(r"'nonce-[^']+'", _directives(frame)["script-src"])
    nonce = _directives(frame)["script-src"][len("'nonce-") : -1]
    echo = "onclick=\"say('plain')\""  # built from the input: stays, and is refused
    assert echo in frame.text
    if scripts:
        assert re.search(
            r'<button type="button" data-cl-on-click="[0-9a-f]{16}">', frame.text
        )
        assert f'<script nonce="{nonce}">__closedloopHandlers.push(' in frame.text
    else:
        assert "onclick=\"document.body.dataset.clicked = 'yes'\"" in frame.text
        assert "__closedloopHandlers.push(" not in frame.text


def _next_task(client: httpx.Client) -> dict[str, Any]:
    work = client.get("/review/work").text
    token = work.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = client.post("/review/api/tasks/next", headers={"x-csrf-token": token})
    task: dict[str, Any] = response.json()["task"]
    return task


def _directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    pairs = (d.strip().partition(" ") for d in policy.split(";") if d.strip())
    return {name: value for name, _, value in pairs}


def test_template_scripts_setting_refuses_a_javascript_url() -> None:
    with pytest.raises(ValidationError, match="CLOSEDLOOP_TEMPLATE_SCRIPTS") as caught:
        Settings.from_env({"CLOSEDLOOP_TEMPLATE_SCRIPTS": "inline javascript:alert(1)"})
    assert "'javascript:alert(1)'" in caught.value.message
    assert caught.value.field == "template_scripts"


def test_template_scripts_setting_off_is_empty_and_duplicates_collapse() -> None:
    off = Settings.from_env({"CLOSEDLOOP_TEMPLATE_SCRIPTS": "off"})
    assert off.template_scripts == ()
    assert not off.inline_template_scripts
    both = Settings.from_env(
        {
            "CLOSEDLOOP_TEMPLATE_SCRIPTS": (
                "inline https://cdn.example.com inline https://cdn.example.com"
            )
        }
    )
    assert both.template_scripts == ("inline", "https://cdn.example.com")
    assert both.inline_template_scripts
    assert both.template_script_origins == ("https://cdn.example.com",)
