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

import functools
import html
import json
import re
import secrets
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
]

FRAME_PROTOCOL: dict[str, str] = {
    "submit": "closedloop:submit",
    "skip": "closedloop:skip",
    "focus": "closedloop:focus",
}
_NONCE = re.compile(r"[A-Za-z0-9+/=_-]{8,128}")
# A start tag's name, then its attributes one at a time, as a browser reads them.
_TAG_NAME = re.compile(r"<[A-Za-z][^\s/>]*")
_ATTRIBUTE = re.compile(
    r"""([\s/]*)([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
)
# Events whose handler attributes a template may write (onclick, onchange, ...).
_HANDLER_EVENTS = frozenset(
    """abort animationend auxclick beforeinput blur canplay canplaythrough change click
    contextmenu copy cut dblclick drag dragend dragenter dragleave dragover dragstart
    drop durationchange ended error focus focusin focusout input invalid keydown
    keypress keyup load loadeddata loadedmetadata loadstart mousedown mouseenter
    mouseleave mousemove mouseout mouseover mouseup paste pause play playing
    pointercancel pointerdown pointerenter pointerleave pointermove pointerout
    pointerover pointerup progress ratechange reset resize scroll search seeked seeking
    select selectionchange stalled submit suspend timeupdate toggle touchcancel
    touchend touchmove touchstart transitionend volumechange waiting wheel""".split()  # noqa: SIM905
)
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
) -> str:
    """The Content-Security-Policy header to serve a task page rendered with ``nonce``.

    ``origin`` (``https://host:port``) is where closedloop serves the page, named
    next to ``'self'`` for images and media. Scripts run only with the nonce:
    :func:`render_task_page` gives it to the tags the operator allowed. Styles
    written in a template apply (``'unsafe-inline'`` for styles only), and
    stylesheets load from ``style_origins`` too (``CLOSEDLOOP_TEMPLATE_SCRIPTS``);
    nothing in the frame may connect anywhere (no ``connect-src``).
    """
    _check_nonce(nonce)
    for value in (origin, *style_origins):
        if value and not _ORIGIN.fullmatch(value):
            raise ValueError(
                f"origin must look like https://host[:port]; got {value!r}"
            )
    own = f"'self' {origin}" if origin else "'self'"
    extra = "".join(f" {o}" for o in style_origins)
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'self' 'unsafe-inline'{extra}; "
        f"img-src {own} data: blob:; media-src {own} blob:; font-src 'self' data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        "sandbox allow-scripts allow-forms"
    )


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
    handlers = ""
    if template_scripts:
        template, handlers = _bind_handlers(template, nonce)
    body = render_task_ui(template, input_content, object_url=object_url)
    style, script = _crowd_assets()
    policy = ""
    if embed_policy:
        rules = task_frame_csp(nonce, style_origins=script_origins).split("; ")
        kept = "; ".join(r for r in rules if not r.startswith(_META_IGNORED))
        policy = f'<meta http-equiv="Content-Security-Policy" content="{kept}">\n'
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n{policy}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Task</title>\n<style>\n{style}</style>\n"
        '</head>\n<body class="cl-task">\n'
        f"{body}\n{handlers}"
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


def _bind_handlers(template: str, nonce: str) -> tuple[str, str]:
    """Handler attributes written in the template, moved into scripts with the nonce.

    AWS's samples wire buttons with ``onclick="..."``, which a nonce cannot
    allow. Each such attribute in the template's source becomes
    ``data-cl-on-EVENT="ID"`` with an ID made for this page, and its code a
    function in a script of its own, run with the scope an attribute's code
    has (the element, its form, the document); the crowd elements' script
    binds them. Input cannot add a handler, since only the template's source
    is read and an ID is never seen before the page is; like anything a
    template prints with ``skip_autoescape``, though, input markup next to a
    tag can still change that tag. A handler holding Liquid markup (its code
    would come from the input) stays an attribute, which the policy refuses.
    """
    finder = _StartTags()
    finder.feed(template)
    finder.close()
    found: list[tuple[str, str, str]] = []
    pieces, at = [], 0
    for start, raw in finder.tags:
        pieces += [template[at:start], _rewrite_handlers(raw, found)]
        at = start + len(raw)
    pieces.append(template[at:])
    scripts = "".join(
        f'<script nonce="{nonce}">__closedloopHandlers.push([{json.dumps(handler_id)}, '
        f"{json.dumps(event)}, function (event) {{ with (document) with (this.form || {{}}) "
        f"with (this) {{\n{code}\n}} }}]);</script>\n"
        for handler_id, event, code in found
    )
    # A declared variable, so an element the input names __closedloopHandlers
    # cannot stand in for the list.
    prelude = f'<script nonce="{nonce}">var __closedloopHandlers = [];</script>\n'
    return "".join(pieces), prelude + scripts if found else ""


def _rewrite_handlers(raw: str, found: list[tuple[str, str, str]]) -> str:
    """One start tag with its handler attributes swapped for ``data-cl-on-*`` ids.

    The attributes are read one after the other, as a browser reads them, so
    text inside another attribute's value is never taken for a handler.
    """
    opening = _TAG_NAME.match(raw)
    if opening is None:
        return raw
    out, at = [raw[: opening.end()]], opening.end()
    while (attribute := _ATTRIBUTE.match(raw, at)) is not None and attribute.end() > at:
        at = attribute.end()
        lead, name, value = attribute.group(1, 2, 3)
        event = name.lower()[2:] if name.lower().startswith("on") else ""
        quoted = bool(value) and value[0] in "\"'" and value[-1] == value[0]
        code = html.unescape(value[1:-1] if quoted else value or "")
        if (
            event not in _HANDLER_EVENTS
            or not code
            or any(mark in code for mark in ("{{", "{%"))
            or any(bad in code.lower() for bad in ("</script", "<!--"))
        ):
            out.append(attribute.group(0))
            continue
        handler_id = secrets.token_hex(8)
        found.append((handler_id, event, code))
        out.append(f'{lead or " "}data-cl-on-{event}="{handler_id}"')
    out.append(raw[at:])
    return "".join(out)


class _StartTags(HTMLParser):
    """Where each start tag of a template's source is, and its text.

    Text of ``textarea``, ``title`` and ``noscript`` is text to a browser,
    whatever tags it seems to hold, so tags inside them are passed over.
    """

    _TEXT_ONLY = ("textarea", "title", "noscript")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[int, str]] = []
        self._line_starts = [0]
        self._inside: str | None = None

    def feed(self, data: str) -> None:
        self._line_starts = [0] + [i + 1 for i, c in enumerate(data) if c == "\n"]
        super().feed(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._inside is None and self._record() and tag in self._TEXT_ONLY:
            self._inside = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._inside is None:
            self._record()

    def _record(self) -> bool:
        raw = self.get_starttag_text()
        if not raw:
            return False
        line, column = self.getpos()
        self.tags.append((self._line_starts[line - 1] + column, raw))
        return True

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None


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
