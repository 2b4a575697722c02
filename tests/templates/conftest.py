"""Fixtures for task UI tests: a tiny host server and one Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from task_host import CHROMIUM, CHROMIUM_ARGS, TaskHost


@pytest.fixture(scope="module")
def task_host() -> Iterator[TaskHost]:
    host = TaskHost()
    yield host
    host.close()


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Any]:
    """One Chromium per test module and one page reused by its tests."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        yield page
        browser.close()


@pytest.fixture
def page(browser_page: Any) -> Iterator[Any]:
    """The module's page; the test fails if a script in the page threw."""
    errors: list[str] = []

    def record(error: Any) -> None:
        errors.append(str(error))

    browser_page.on("pageerror", record)
    yield browser_page
    browser_page.remove_listener("pageerror", record)
    assert errors == []
