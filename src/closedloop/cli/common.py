"""What every CLI command shares: the opened engine, output, and error exits."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer

from closedloop.engine import Engine
from closedloop.errors import (
    ClosedloopError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from closedloop.settings import Settings

__all__ = [
    "EXIT_CODES",
    "State",
    "emit",
    "exit_code",
    "fail",
    "open_from",
    "run",
    "state",
]

T = TypeVar("T")
EXIT_CODES: dict[type[ClosedloopError], int] = {
    ValidationError: 2,
    NotFoundError: 3,
    ConflictError: 4,
}


class State:
    """Options given before the command (``--home``)."""

    home: Path | None = None


state = State()


def exit_code(exc: ClosedloopError) -> int:
    return next((EXIT_CODES[k] for k in type(exc).__mro__ if k in EXIT_CODES), 1)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def open_from() -> Iterator[Engine]:
    """Open the engine of ``--home``; a closedloop error ends the command with one line."""
    engine: Engine | None = None
    try:
        engine = Engine(Settings.from_env(home=state.home))
        yield engine
    except ClosedloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exit_code(exc)) from None
    finally:
        if engine is not None:
            engine.close()


def run(work: Callable[[Engine], T]) -> T:
    with open_from() as engine:
        return work(engine)


def emit(value: Any, as_json: bool, text: str | Callable[[], str]) -> None:
    """Print ``value`` as one JSON object with ``--json``, else the human text."""
    if as_json:
        sys.stdout.write(orjson.dumps(value, default=str).decode() + "\n")
    else:
        typer.echo(text() if callable(text) else text)
