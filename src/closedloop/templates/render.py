"""Render A2I task UI templates (Liquid plus crowd HTML elements) into a sandboxed page.

A template sees the loop's input as ``task.input``. Output is HTML-escaped unless
the template says ``skip_autoescape``; ``to_json``, ``escape``, ``escape_once`` and
``grant_read_access`` work as in A2I.

The page a worker sees is a complete HTML document meant for an iframe with
``sandbox="allow-scripts allow-forms"`` (never ``allow-same-origin``), served
with the Content-Security-Policy ``task_frame_csp(nonce)`` gives: scripts only
with the nonce, which the template's own script tags get where the operator
allowed them (inline, or loaded from a named origin); the template's own styles;
no fetch/XHR/WebSocket (no ``connect-src``); images and media from closedloop
only; and a CSP ``sandbox`` so the page stays sandboxed even when opened on its
own. closedloop's crowd elements are written into the page itself, their
script with the nonce, since a frame with an opaque origin gets no use of the
browser's HTTP cache and linked files would be fetched again for every task;
the ``<script>`` loading AWS's element library from assets.crowd.aws is dropped.
An inline ``<script>`` written in a template gets the nonce only when the page
is rendered with ``template_scripts=True`` (``CLOSEDLOOP_TEMPLATE_SCRIPTS`` says
``inline``), never one that came from the input through ``skip_autoescape``,
and even then it runs inside the sandbox: an opaque
origin with no cookies, no storage of the host and no network access.

Frame protocol (``FRAME_PROTOCOL``): the frame talks to its host only with
``window.parent.postMessage(message, "*")``; the frame's origin is ``"null"``, so
the host must check ``event.source === iframe.contentWindow``.

* frame to host, on submit: ``{"type": "closedloop:submit", "answerContent": {...}}``
  where answerContent has the shape A2I writes for each crowd element;
* frame to host, on skip (the S key or a ``crowd-button form-action="skip"``):
  ``{"type": "closedloop:skip"}``;
* host to frame: ``{"type": "closedloop:focus"}`` moves the keyboard focus to the
  first field of the form, so number keys, Enter and S work at once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from liquid import BoundTemplate, Environment
from liquid.exceptions import LiquidError

from closedloop.errors import ValidationError
from closedloop.templates.filters import object_urls, register_filters

__all__ = [
    "AWS_ELEMENTS_SCRIPT",
    "FRAME_PROTOCOL",
    "check_renders",
    "crowd_script",
    "frame_origin",
    "render_task_page",
    "render_task_ui",
    "static_dir",
    "task_frame_csp",
    "template_handler_hashes",
]

FRAME_PROTOCOL: dict[str, str] = {
    "submit": "closedloop:submit",
    "skip": "closedloop:skip",
    "focus": "closedloop:focus",
}
_NONCE = re.compile(r"[A-Za-z0-9+/=_-]{8,128}")
_HANDLER_HASH = re.compile(r"'sha256-[A-Za-z0-9+/]{43}='")
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
# The crowd elements' script, in static/crowd/: later parts use what earlier ones define.
CROWD_SCRIPT_PARTS = (
    "base.js",
    "fields.js",
    "classifiers.js",
    "annotators.js",
    "keyboard.js",
)
# Directives a policy in a <meta> tag may not carry.
_META_IGNORED = ("sandbox", "frame-ancestors")
_SCRIPT_TAG = re.compile(r"<script(?=[\s>])([^>]*)>", re.IGNORECASE)
_SCRIPT_SRC = re.compile(
    r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)
# AWS's own element library, which A2I templates load; closedloop brings its own.
AWS_ELEMENTS_SCRIPT = re.compile(
    r"<script[^>]*\bsrc\s*=\s*[\"']?https://assets\.crowd\.aws/[^>]*>\s*</script>",
    re.IGNORECASE,
)


class _TaskUiEnvironment(Environment):
    """Liquid as A2I runs it, with limits so one template cannot exhaust the server."""

    loop_iteration_limit: ClassVar[int | None] = 100_000
    output_stream_limit: ClassVar[int | None] = 5_000_000


_ENVIRONMENT = _TaskUiEnvironment(autoescape=True, strict_filters=True)
register_filters(_ENVIRONMENT)


def static_dir() -> Path:
    """The folder holding crowd-elements.css and the script's parts in ``crowd/``."""
    return Path(__file__).resolve().parent / "static"


def crowd_script() -> str:
    """closedloop's crowd elements as one script: the parts, in order, in one scope."""
    return _crowd_assets()[1]


def render_task_ui(
    template: str,
    input_content: Mapping[str, Any],
    *,
    object_url: Callable[[str], str] | None = None,
) -> str:
    """The rendered template body; ValidationError names the line and the problem."""
    try:
        parsed = _parse(template)
        with object_urls(object_url):
            return parsed.render(task={"input": dict(input_content)})
    except LiquidError as exc:
        raise ValidationError(_describe(exc), "UiTemplate") from exc
    except RecursionError as exc:
        raise ValidationError(
            "task UI template: the input is nested too deeply to render", "UiTemplate"
        ) from exc
    except ValidationError as exc:
        raise ValidationError(f"task UI template: {exc.message}", "UiTemplate") from exc


@functools.lru_cache(maxsize=256)
def _parse(template: str) -> BoundTemplate:
    """Parse once per distinct template: task UIs are immutable, and loops reuse them."""
    return _ENVIRONMENT.from_string(template)


def _describe(exc: LiquidError) -> str:
    where = exc.context()
    message = str(exc.message)
    if where is None:
        return f"task UI template: {message}"
    line, column = where[0], where[1] + 1
    return f"task UI template line {line}, column {column}: {message}"


def check_renders(template: str, input_content: dict[str, Any]) -> str | None:
    """The engine's TemplateCheck: why the template cannot render this input, or None."""
    try:
        render_task_ui(template, input_content)
    except ValidationError as exc:
        return exc.message
    return None


def task_frame_csp(
    nonce: str,
    *,
    origin: str = "",
    style_origins: Sequence[str] = (),
    handler_hashes: Sequence[str] = (),
) -> str:
    """The Content-Security-Policy header to serve a task page rendered with ``nonce``.

    ``origin`` (``https://host:port``) is where closedloop serves the page, named
    next to ``'self'`` for images and media. Scripts run only with the nonce:
    :func:`render_task_page` gives it to the tags the operator allowed. Styles
    written in a template apply (``'unsafe-inline'`` for styles only), and
    stylesheets load from ``style_origins`` too (``CLOSEDLOOP_TEMPLATE_SCRIPTS``);
    nothing in the frame may connect anywhere (no ``connect-src``).
    ``handler_hashes`` (from :func:`template_handler_hashes`) let the event
    handler attributes written in the template run, and no others.
    """
    _check_nonce(nonce)
    for value in handler_hashes:
        if not _HANDLER_HASH.fullmatch(value):
            raise ValueError(f"handler hash must look like 'sha256-...'; got {value!r}")
    handlers = (
        " 'unsafe-hashes'" + "".join(f" {h}" for h in handler_hashes)
        if handler_hashes
        else ""
    )
    for value in (origin, *style_origins):
        if value and not _ORIGIN.fullmatch(value):
            raise ValueError(
                f"origin must look like https://host[:port]; got {value!r}"
            )
    own = f"'self' {origin}" if origin else "'self'"
    extra = "".join(f" {o}" for o in style_origins)
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'{handlers}; "
        f"style-src 'self' 'unsafe-inline'{extra}; "
        f"img-src {own} data: blob:; media-src {own} blob:; font-src 'self' data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        "sandbox allow-scripts allow-forms"
    )


def template_handler_hashes(template: str) -> tuple[str, ...]:
    """CSP hashes of the event handler attributes written in ``template`` itself.

    AWS's samples wire buttons with ``onclick="..."``; a nonce cannot allow such
    attributes, their hashes can (with ``'unsafe-hashes'``). Read from the
    template's source before Liquid runs, and a handler holding Liquid markup
    is left out, so no handler text can come from the input. Meant for pages
    whose template scripts the operator allowed.
    """
    reader = _HandlerReader()
    reader.feed(AWS_ELEMENTS_SCRIPT.sub("", template))
    reader.close()
    return tuple(
        sorted(
            "'sha256-"
            + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
            + "'"
            for code in reader.handlers
            if "{{" not in code and "{%" not in code
        )
    )


class _HandlerReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.handlers: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on") and value:
                self.handlers.add(value)


def frame_origin(scheme: str, host: str) -> str:
    """``scheme://host`` for :func:`task_frame_csp`; empty when ``host`` is not a plain host[:port]."""
    origin = f"{scheme}://{host}"
    return origin if _ORIGIN.fullmatch(origin) else ""


def _check_nonce(nonce: str) -> None:
    if not _NONCE.fullmatch(nonce):
        raise ValueError(f"nonce must be 8-128 base64 characters; got {nonce!r}")


def render_task_page(
    template: str,
    input_content: Mapping[str, Any],
    *,
    object_url: Callable[[str], str] | None = None,
    nonce: str,
    template_scripts: bool = False,
    script_origins: Sequence[str] = (),
    embed_policy: bool = False,
) -> str:
    """A complete HTML document for the sandboxed task frame (see the module docstring).

    ``template_scripts`` gives the nonce to the template's inline scripts, and
    ``script_origins`` to its ``<script src>`` tags that load from one of those
    origins; the policy names no origin for scripts, so a script tag that
    arrives in the input never runs, wherever it points. ``embed_policy`` writes
    the policy into the page as a ``<meta>`` tag, for a page opened as a file
    (a browser ignores ``sandbox`` and ``frame-ancestors`` there).

    The elements' script follows the template's body, so it runs once the body is
    parsed, as a deferred script would, and before the template's deferred scripts.
    """
    _check_nonce(nonce)
    template = AWS_ELEMENTS_SCRIPT.sub("", template)
    template = _trust_scripts(template, nonce, template_scripts, script_origins)
    body = render_task_ui(template, input_content, object_url=object_url)
    style, script = _crowd_assets()
    policy = ""
    if embed_policy:
        hashes = template_handler_hashes(template) if template_scripts else ()
        rules = task_frame_csp(
            nonce, style_origins=script_origins, handler_hashes=hashes
        ).split("; ")
        kept = "; ".join(r for r in rules if not r.startswith(_META_IGNORED))
        policy = f'<meta http-equiv="Content-Security-Policy" content="{kept}">\n'
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n{policy}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Task</title>\n<style>\n{style}</style>\n"
        '</head>\n<body class="cl-task">\n'
        f"{body}\n"
        f'<script nonce="{nonce}">\n{script}</script>\n'
        "</body>\n</html>\n"
    )


def _trust_scripts(
    template: str, nonce: str, inline: bool, origins: Sequence[str]
) -> str:
    """The template source with the nonce on the script tags the operator allowed.

    Runs before Liquid, so only tags written in the template itself qualify; a
    ``src`` built from the input (``{{ ... }}``) names no allowed origin.
    """
    allowed = set(origins)

    def trusted(match: re.Match[str]) -> str:
        attributes = match.group(1)
        src = _SCRIPT_SRC.search(attributes)
        if src is None:
            ok = inline
        else:
            url = next(g for g in src.groups() if g is not None)
            ok = _origin_of(url) in allowed
        return f'<script nonce="{nonce}"{attributes}>' if ok else match.group(0)

    return _SCRIPT_TAG.sub(trusted, template)


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


@functools.cache
def _crowd_assets() -> tuple[str, str]:
    """The elements' styles and script, checked once that neither can end its tag early."""
    style = (static_dir() / "crowd-elements.css").read_text(encoding="utf-8")
    parts = (
        (static_dir() / "crowd" / name).read_text(encoding="utf-8")
        for name in CROWD_SCRIPT_PARTS
    )
    script = '(function () {\n  "use strict";\n\n' + "\n".join(parts) + "})();\n"
    for text, tag in ((style, "</style"), (script, "</script")):
        if tag in text.lower():
            raise RuntimeError(f"crowd elements must not contain {tag!r} to be inlined")
    return style, script
