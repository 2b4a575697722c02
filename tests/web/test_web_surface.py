"""The web package's public surface, which the app and the CLI wire in."""

from __future__ import annotations

import inspect

import closedloop.cli.web
import closedloop.web


def test_the_public_names_are_pinned() -> None:
    assert closedloop.web.__all__ == ["web_router"]
    assert closedloop.cli.web.__all__ == ["register"]
    router = inspect.signature(closedloop.web.web_router)
    assert list(router.parameters) == ["engine", "secure_cookies"]
    assert router.parameters["secure_cookies"].kind is inspect.Parameter.KEYWORD_ONLY
    assert router.parameters["secure_cookies"].default is False
    assert list(inspect.signature(closedloop.cli.web.register).parameters) == [
        "app",
        "workers_app",
    ]
