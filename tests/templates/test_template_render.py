"""Rendering task UI templates: A2I's filters, escaping, errors and the frame page."""

from __future__ import annotations

import re

import pytest

from closedloop.errors import ValidationError
from closedloop.templates import (
    FRAME_PROTOCOL,
    check_renders,
    crowd_script,
    render_task_page,
    render_task_ui,
    static_dir,
    task_frame_csp,
    template_fields,
)


def test_input_is_reachable_as_task_input() -> None:
    html = render_task_ui(
        "<p>{{ task.input.name }} {{ task.input.n | plus: 1 }}</p>",
        {"name": "Ada", "n": 2},
    )
    assert html == "<p>Ada 3</p>"


def test_hostile_input_is_escaped_in_text_and_attributes() -> None:
    hostile = "\"><script>alert('x')</script>&"
    html = render_task_ui(
        '<p title="{{ task.input.s }}">{{ task.input.s }}</p>', {"s": hostile}
    )
    assert "<script>" not in html
    assert html == (
        '<p title="&#34;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">'
        "&#34;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>"
    )


def test_escape_is_not_applied_twice_and_escape_once_keeps_entities() -> None:
    html = render_task_ui(
        "{{ task.input.s | escape }}|{{ task.input.t | escape_once }}",
        {"s": "<b>", "t": "&amp; <i>"},
    )
    assert html == "&lt;b&gt;|&amp; &lt;i&gt;"


def test_skip_autoescape_outputs_the_html_as_written() -> None:
    html = render_task_ui(
        "{{ task.input.help | skip_autoescape }}", {"help": "<em>Look closely</em>"}
    )
    assert html == "<em>Look closely</em>"


def test_to_json_survives_attribute_and_script_contexts() -> None:
    data = {"labels": ["cat", "</script><b>'"]}
    attribute = render_task_ui("{{ task.input.labels | to_json }}", data)
    script = render_task_ui("{{ task.input.labels | to_json | skip_autoescape }}", data)
    assert (
        attribute
        == "[&#34;cat&#34;,&#34;\\u003c/script\\u003e\\u003cb\\u003e\\u0027&#34;]"
    )
    assert script == '["cat","\\u003c/script\\u003e\\u003cb\\u003e\\u0027"]'


def test_to_json_of_missing_value_is_null() -> None:
    assert render_task_ui("{{ task.input.nothing | to_json }}", {}) == "null"


def test_grant_read_access_signs_s3_uris_and_passes_https_through() -> None:
    template = (
        "{{ task.input.a | grant_read_access }} {{ task.input.b | grant_read_access }}"
    )
    html = render_task_ui(
        template,
        {"a": "s3://bucket/img 1.png", "b": "https://example.org/x.png"},
        object_url=lambda uri: (
            "/review/objects/" + uri.replace("s3://", "").replace(" ", "%20")
        ),
    )
    assert html == "/review/objects/bucket/img%201.png https://example.org/x.png"


def test_grant_read_access_refuses_other_schemes() -> None:
    with pytest.raises(
        ValidationError,
        match="grant_read_access needs an s3://BUCKET/KEY or https URL; got 'file:///etc/passwd'",
    ):
        render_task_ui(
            "{{ task.input.u | grant_read_access }}", {"u": "file:///etc/passwd"}
        )


def test_unknown_filter_names_line_and_column() -> None:
    with pytest.raises(ValidationError) as caught:
        render_task_ui("<p>\n  {{ task.input.x | shout }}</p>", {"x": 1})
    assert (
        caught.value.message
        == "task UI template line 2, column 21: unknown filter 'shout'"
    )
    assert caught.value.field == "UiTemplate"


def test_check_renders_reports_syntax_errors_and_accepts_good_templates() -> None:
    assert check_renders("{% if task.input.x %}open", {"x": 1}) == (
        "task UI template: expected tag endif, found end of expression"
    )
    assert check_renders("<crowd-form></crowd-form>", {}) is None


def test_runaway_loops_are_stopped() -> None:
    problem = check_renders(
        "{% for i in (1..1000000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}",
        {},
    )
    assert problem is not None and "limit" in problem


def test_task_page_loads_elements_with_the_nonce_and_keeps_template_scripts_inert() -> (
    None
):
    page = render_task_page(
        "<crowd-form><script>steal()</script>{{ task.input.t }}</crowd-form>",
        {"t": "hi"},
        nonce="abcDEF123456",
    )
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    elements = crowd_script()
    assert f'<script nonce="abcDEF123456">\n{elements}</script>' in page
    assert page.index("<script>steal()</script>hi") < page.index(elements)
    assert (static_dir() / "crowd-elements.css").read_text() in page
    assert "<link" not in page and " src=" not in page


def test_task_page_can_let_template_scripts_run_but_not_scripts_from_input() -> None:
    page = render_task_page(
        "<script>ok()</script>{{ task.input.t | skip_autoescape }}",
        {"t": "<script>evil()</script>"},
        nonce="n0nce-value",
        template_scripts=True,
    )
    assert '<script nonce="n0nce-value">ok()</script>' in page
    assert "<script>evil()</script>" in page


def test_task_page_refuses_a_nonce_that_could_break_the_attribute() -> None:
    with pytest.raises(ValueError, match="nonce must be"):
        render_task_page("", {}, nonce='x" onload="y')


def test_static_files_and_protocol_are_published() -> None:
    assert (static_dir() / "crowd-elements.css").is_file()
    assert crowd_script().startswith('(function () {\n  "use strict";')
    assert FRAME_PROTOCOL == {
        "submit": "closedloop:submit",
        "skip": "closedloop:skip",
        "focus": "closedloop:focus",
    }
    script = crowd_script()
    assert "fetch(" not in script and "XMLHttpRequest" not in script


def test_aws_element_library_is_dropped_and_external_scripts_never_get_the_nonce() -> (
    None
):
    template = (
        '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n'
        '<script src="https://cdn.example.org/x.js"></script><script>inline()</script>'
        '<crowd-form><crowd-input name="a"></crowd-input></crowd-form>'
    )
    page = render_task_page(template, {}, nonce="abcdefgh12", template_scripts=True)
    assert "assets.crowd.aws" not in page
    assert '<script src="https://cdn.example.org/x.js"></script>' in page
    assert '<script nonce="abcdefgh12">inline()</script>' in page
    assert (
        template_fields(
            template.replace("<script>inline()</script>", "").replace(
                '<script src="https://cdn.example.org/x.js"></script>', ""
            )
        ).scripted
        is False
    )


def test_public_surface_is_pinned() -> None:
    import closedloop.templates as templates

    assert set(templates.__all__) == {
        "BUILTIN_KINDS",
        "FRAME_PROTOCOL",
        "AnswerField",
        "ObjectUrlSigner",
        "TemplateFields",
        "builtin_template",
        "check_answer",
        "check_renders",
        "crowd_script",
        "object_router",
        "render_task_page",
        "render_task_ui",
        "static_dir",
        "task_frame_csp",
        "template_fields",
    }


def test_frame_csp_blocks_network_and_keeps_the_page_sandboxed() -> None:
    csp = task_frame_csp("abcdefgh12")
    assert "default-src 'none'" in csp and "connect-src" not in csp
    assert "script-src 'nonce-abcdefgh12';" in csp
    assert csp.endswith("sandbox allow-scripts allow-forms")


def test_allowed_origins_trust_the_templates_script_tags_never_the_inputs() -> None:
    template = (
        '<script src="https://cdn.example.com/lib.js"></script>'
        "<script src='https://other.example.org/x.js'></script>"
        '<script src="{{ task.input.url }}"></script>'
        "<crowd-form>{{ task.input.html | skip_autoescape }}</crowd-form>"
    )
    injected = '<script src="https://cdn.example.com/evil.js"></script>'
    page = render_task_page(
        template,
        {"url": "https://cdn.example.com/x.js", "html": injected},
        nonce="abcdefgh12",
        script_origins=["https://cdn.example.com"],
    )

    assert '<script nonce="abcdefgh12" src="https://cdn.example.com/lib.js">' in page
    assert "<script src='https://other.example.org/x.js'>" in page
    assert '<script src="https://cdn.example.com/x.js">' in page  # src from the input
    assert injected in page  # as markup, without the nonce: the policy refuses it
    csp = task_frame_csp("abcdefgh12", style_origins=["https://cdn.example.com"])
    assert "script-src 'nonce-abcdefgh12';" in csp
    assert "style-src 'self' 'unsafe-inline' https://cdn.example.com;" in csp


def test_a_page_opened_as_a_file_carries_its_policy_in_a_meta_tag() -> None:
    page = render_task_page("<p>hi</p>", {}, nonce="abcdefgh12", embed_policy=True)
    meta = re.search(
        r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page
    )
    assert meta is not None
    assert "script-src 'nonce-abcdefgh12'" in meta.group(1)
    assert "sandbox" not in meta.group(1) and "frame-ancestors" not in meta.group(1)
