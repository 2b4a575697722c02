"""The ``closedloop templates`` commands: preview a task UI template, print a built-in."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from closedloop.errors import ValidationError
from closedloop.settings import Settings
from closedloop.templates.builtin import BUILTIN_KINDS, builtin_template
from closedloop.templates.fields import AnswerField, template_fields
from closedloop.templates.render import render_task_page

__all__ = ["register", "templates_app"]

EXIT_TEMPLATE_ERRORS = 2

templates_app = typer.Typer(
    help="Task UI templates: preview one with an input, or print a built-in.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``templates`` sub-command group to the main CLI."""
    app.add_typer(templates_app, name="templates")


def _read_input(value: str) -> dict[str, Any]:
    text = (
        Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    )
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"--input must be a JSON object or @FILE; {exc}", "--input"
        ) from exc
    if not isinstance(parsed, dict):
        raise ValidationError(
            f"--input must be a JSON object; got {text[:40]!r}", "--input"
        )
    return parsed


def _describe(field: AnswerField) -> str:
    extra = f": {', '.join(field.labels)}" if field.labels else ""
    required = ", required" if field.required else ""
    return f"{field.name} ({field.kind}{required}){extra}"


def _problems(template: str, task_input: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The template's errors and a line per answer field it produces."""
    try:
        fields = template_fields(template, task_input)
    except ValidationError as exc:
        return [exc.message], []
    errors = list(fields.problems)
    # crowd-entity-annotation may stand alone: it brings its own form and Submit button.
    if "<crowd-form" not in template and "<crowd-entity-annotation" not in template:
        errors.append("the template has no <crowd-form>, so a worker cannot submit")
    if not fields.fields and not fields.scripted:
        errors.append("the template has no named answer fields")
    return errors, [_describe(f) for f in fields.fields]


@templates_app.command("render")
def render(
    file: Annotated[
        Path, typer.Argument(help="The Liquid template (HTML) to preview.")
    ],
    task_input: Annotated[
        str,
        typer.Option(
            "--input", help="The task input: a JSON object, or @FILE holding one."
        ),
    ] = "{}",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the preview page here instead of to stdout."),
    ] = None,
) -> None:
    """Render FILE with an input into a full preview page and list its errors (exit 2)."""
    try:
        template = file.read_text(encoding="utf-8")
        data = _read_input(task_input)
    except (OSError, ValidationError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(EXIT_TEMPLATE_ERRORS) from None
    errors, fields = _problems(template, data)
    for error in errors:
        typer.echo(f"error: {error}", err=True)
    if errors:
        raise typer.Exit(EXIT_TEMPLATE_ERRORS)
    page = render_task_page(
        template,
        data,
        nonce=secrets.token_urlsafe(16),
        template_scripts=True,
        embed_policy=True,
    )
    if out is None:
        sys.stdout.write(page)
    else:
        out.write_text(page, encoding="utf-8")
        typer.echo(f"wrote {out}")
    for line in fields:
        typer.echo(f"field {line}", err=out is None)
    if template_fields(template).scripted and not _scripts_served():
        typer.echo(
            "note: the template has scripts of its own. This preview runs them; "
            "closedloop serve runs them only when CLOSEDLOOP_TEMPLATE_SCRIPTS "
            "allows (here it does not), and without them the form may submit "
            "other answers than the preview shows.",
            err=True,
        )


def _scripts_served() -> bool:
    """Whether this environment's serve would run a template's inline scripts."""
    try:
        return Settings.from_env().inline_template_scripts
    except ValidationError:
        return False


@templates_app.command("builtin")
def builtin(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(BUILTIN_KINDS)}.")],
    labels: Annotated[
        str, typer.Option("--labels", help="Comma-separated labels, e.g. cat,dog.")
    ] = "",
    header: Annotated[
        str | None, typer.Option("--header", help="The question shown to the worker.")
    ] = None,
) -> None:
    """Print a built-in task UI template for KIND with the given labels."""
    chosen = [label.strip() for label in labels.split(",") if label.strip()]
    try:
        typer.echo(builtin_template(kind, chosen, header=header), nl=False)
    except ValidationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(EXIT_TEMPLATE_ERRORS) from None
