"""Documentation that can be checked is checked: settings, commands and the public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

import closedloop
from closedloop.cli.main import app
from closedloop.settings import SETTINGS, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_in_the_readme_with_its_default(setting: object) -> None:
    from closedloop.settings import Setting

    assert isinstance(setting, Setting)
    row = next(
        (line for line in README.splitlines() if f"`{setting.env}`" in line), None
    )
    assert row is not None, f"{setting.env} is not documented in README.md"


def test_the_settings_table_matches_the_settings_class() -> None:
    assert {s.name for s in SETTINGS} == set(Settings.__dataclass_fields__)


def _commands() -> list[str]:
    names = [
        c.name or (c.callback.__name__ if c.callback else "")
        for c in app.registered_commands
    ]
    groups = [g.name or "" for g in app.registered_groups]
    return sorted(n for n in names + groups if n)


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_in_the_readme(command: str) -> None:
    if command == "version":
        pytest.skip("version needs no walkthrough")
    assert f"closedloop {command}" in README, (
        f"`closedloop {command}` is not documented in README.md"
    )


def test_the_public_surface_is_pinned() -> None:
    assert closedloop.__all__ == [
        "AuthenticationError",
        "ClosedloopError",
        "ConflictError",
        "Engine",
        "LeaseLostError",
        "NotFoundError",
        "Settings",
        "ValidationError",
        "__version__",
        "open_engine",
    ]
