"""End to end in Chromium: two reviewers work a queue by keyboard alone; an operator checks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select
from web_helpers import PASSWORDS, Kit, WebServer

from closedloop.engine import Engine
from closedloop.store.models import Answer, Task
from headless import chromium, needs_chromium

REVIEW_SHOT = Path("/tmp/closedloop-review.png")
ADMIN_SHOT = Path("/tmp/closedloop-admin.png")

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def _sign_in_by_keyboard(page: Page, url: str, realm: str, name: str) -> None:
    page.goto(f"{url}/{realm}/login")
    page.wait_for_selector("input[name=username]:focus")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORDS[name])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/{realm}/")


def _wait_for_task(page: Page, previous: str) -> str:
    """The id of the task now in the frame, once its frame has the keyboard focus."""
    page.wait_for_function(
        "prev => { const f = document.getElementById('task-frame');"
        " return (f.dataset.taskId && f.dataset.taskId !== prev && !f.hidden)"
        " || !document.getElementById('empty').hidden; }",
        arg=previous,
    )
    if page.is_visible("#empty"):
        return ""
    task_id = page.get_attribute("#task-frame", "data-task-id") or ""
    frame = (
        page.wait_for_event(
            "framenavigated", predicate=lambda f: f"/tasks/{task_id}/frame" in f.url
        )
        if not any(f"/tasks/{task_id}/frame" in f.url for f in page.frames)
        else next(f for f in page.frames if f"/tasks/{task_id}/frame" in f.url)
    )
    frame.wait_for_selector("html[data-crowd-ready]", state="attached")
    frame.wait_for_function("document.hasFocus()")
    return task_id


def _work_queue(page: Page, url: str, name: str, key: str, *, skip_first: bool) -> int:
    """Sign in and answer every task with ``key`` then Enter; returns how many."""
    _sign_in_by_keyboard(page, url, "review", name)
    page.wait_for_selector("#start:focus")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/review/work\??$"))
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda f: navigations.append(f.url) if f == page.main_frame else None,
    )

    task_id = _wait_for_task(page, "")
    if skip_first:
        page.keyboard.press("s")
        task_id = _wait_for_task(page, task_id)
    answered = 0
    while task_id:
        if name == "alice" and answered == 0:
            page.screenshot(path=str(REVIEW_SHOT), full_page=True)
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        answered += 1
        page.wait_for_function(
            "n => document.getElementById('done-count').textContent === String(n)",
            arg=answered,
        )
        task_id = _wait_for_task(page, task_id)
    assert navigations == [], "the work page navigated between tasks"
    assert "Nothing to review" in page.inner_text("#task-title")
    return answered


def test_two_reviewers_work_the_queue_by_keyboard_and_the_operator_sees_it(
    browser: Browser, web: WebServer, kit: Kit
) -> None:
    for name, key, skip in (("alice", "1", True), ("bob", "2", False)):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        assert _work_queue(page, web.url, name, key, skip_first=skip) == len(kit.loops)
        context.close()

    for loop in kit.loops:
        described = kit.engine.loops.describe(loop)
        assert described.status == "Completed"
        document = json.loads(kit.engine.ctx.objects.read(described.output_uri))
        labels = sorted(
            a["answerContent"]["category"]["label"] for a in document["humanAnswers"]
        )
        assert labels == ["fraud", "legit"]

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    _sign_in_by_keyboard(page, web.url, "admin", "olive")
    completed = page.locator(".tile.status-completed strong")
    assert completed.inner_text() == "3"
    page.screenshot(path=str(ADMIN_SHOT), full_page=True)
    page.click("text=Human loops")
    page.select_option("select[name=status]", "Completed")
    page.click("text=Filter")
    rows = page.locator("table tbody tr")
    assert sorted(re.findall(r"loop-\d", rows.all_inner_texts().__str__())) == kit.loops
    context.close()


def _lapse_lease(engine: Engine, task_id: str) -> None:
    """Move the task's lease end into the past, as if the reviewer had left it too long."""
    with engine.ctx.db.write() as session:
        task = session.get(Task, int(task_id))
        assert task is not None and task.status == "leased"
        task.lease_expires_at = datetime.now(UTC) - timedelta(seconds=1)


def test_a_lease_that_lapses_while_the_page_is_open_is_said_and_not_answered(
    browser: Browser, web: WebServer, kit: Kit
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    _sign_in_by_keyboard(page, web.url, "review", "alice")
    page.wait_for_selector("#start:focus")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/review/work\??$"))
    task_id = _wait_for_task(page, "")

    page.clock.install()
    _lapse_lease(kit.engine, task_id)
    page.keyboard.press("1")
    # The refused answer makes the page claim again; the countdown below must
    # start from that claim's lease, so wait for it to be shown.
    with page.expect_response(lambda r: r.url.endswith("/review/api/tasks/next")):
        page.keyboard.press("Enter")
    page.wait_for_timeout(200)
    expect(page.locator("#notice")).to_contain_text("expired")
    assert page.inner_text("#done-count") == "0"
    assert all(
        kit.engine.loops.describe(loop).status == "InProgress" for loop in kit.loops
    )
    with kit.engine.ctx.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 0

    expect(page.locator("#task-frame")).to_be_visible()
    page.clock.fast_forward(601_000)  # past the flow's TaskTimeLimitInSeconds of 600
    expect(page.locator("#notice")).to_contain_text("Time ran out")
    context.close()
