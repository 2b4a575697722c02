"""Fixtures for task UI tests: a tiny host server and one Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from task_host import TaskHost

from headless import CHROMIUM, chromium


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
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1100, "height": 1000})


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
