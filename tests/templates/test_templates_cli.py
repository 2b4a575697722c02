"""The ``closedloop templates`` commands, run through Typer's test runner."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from closedloop.cli.templates import register

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """The closedloop command."""

    register(root)
    return root


def test_render_writes_a_full_preview_page_and_lists_fields(
    app: typer.Typer, tmp_path: Path
) -> None:
    data = tmp_path / "input.json"
    data.write_bytes(
        orjson.dumps({"taskObject": "Great!", "labels": ["Positive", "Negative"]})
    )
    out = tmp_path / "preview.html"
    result = CliRunner().invoke(
        app,
        [
            "templates",
            "render",
            str(FIXTURES / "sentiment.liquid.html"),
            "--input",
            f"@{data}",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert (
        "field category (crowd-classifier, required): Positive, Negative"
        in result.output
    )
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<p>Great!</p>" in page
    assert "customElements.define" in page and "<link" not in page  # opens on its own


def test_render_without_out_prints_the_page(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app,
        [
            "templates",
            "render",
            str(FIXTURES / "topics.liquid.html"),
            "--input",
            '{"ticket": "late"}',
        ],
    )
    assert result.exit_code == 0
    assert "<!DOCTYPE html>" in result.stdout and "late" in result.stdout


def test_render_lists_template_errors_with_exit_code_2(
    app: typer.Typer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<p>\n{{ task.input.x | shout }}</p>")
    result = CliRunner().invoke(app, ["templates", "render", str(bad), "--input", "{}"])
    assert result.exit_code == 2
    assert (
        "error: task UI template line 2, column 19: unknown filter 'shout'"
        in result.stderr
    )


def test_render_reports_a_template_without_form_or_fields(
    app: typer.Typer, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.html"
    bare.write_text("<p>{{ task.input.x }}</p>")
    result = CliRunner().invoke(app, ["templates", "render", str(bare)])
    assert result.exit_code == 2
    assert (
        "error: the template has no <crowd-form>, so a worker cannot submit"
        in result.stderr
    )
    assert "error: the template has no named answer fields" in result.stderr


def test_render_accepts_an_entity_annotation_that_brings_its_own_form(
    app: typer.Typer,
) -> None:
    clause = '{"clause": "Acme Ltd may end this agreement."}'
    template = str(FIXTURES / "clauses.liquid.html")
    result = CliRunner().invoke(
        app, ["templates", "render", template, "--input", clause]
    )
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr
    assert "field clauses (crowd-entity-annotation): party, date" in result.stderr


def test_render_says_when_serve_would_not_run_the_template_scripts(
    app: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["templates", "render", str(FIXTURES / "clauses.liquid.html")]
    args += ["--input", '{"clause": "Acme Ltd may end this agreement."}']
    monkeypatch.delenv("CLOSEDLOOP_TEMPLATE_SCRIPTS", raising=False)
    off = CliRunner().invoke(app, args)
    monkeypatch.setenv("CLOSEDLOOP_TEMPLATE_SCRIPTS", "inline")
    inline = CliRunner().invoke(app, args)

    assert off.exit_code == inline.exit_code == 0
    assert "note: the template has scripts of its own" in off.stderr
    assert "CLOSEDLOOP_TEMPLATE_SCRIPTS" in off.stderr
    assert "note:" not in inline.stderr


def test_render_refuses_input_that_is_not_an_object(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app,
        ["templates", "render", str(FIXTURES / "topics.liquid.html"), "--input", "[1]"],
    )
    assert result.exit_code == 2
    assert "--input must be a JSON object" in result.stderr


def test_builtin_prints_a_template_that_renders(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app, ["templates", "builtin", "multi-label", "--labels", "red, round"]
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("<crowd-form>")
    assert 'categories="[&#34;red&#34;,&#34;round&#34;]"' in result.stdout


def test_builtin_with_an_unknown_kind_fails(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app, ["templates", "builtin", "ranking", "--labels", "a"]
    )
    assert result.exit_code == 2
    assert "kind must be one of" in result.stderr
