"""The Liquid filters A2I adds to task UI templates: to_json, skip_autoescape, grant_read_access."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import orjson
from liquid import Environment
from liquid.undefined import Undefined
from markupsafe import Markup

from closedloop.errors import ValidationError

__all__ = [
    "grant_read_access",
    "object_urls",
    "register_filters",
    "skip_autoescape",
    "to_json",
]

ObjectUrl = Callable[[str], str]
_object_url: ContextVar[ObjectUrl | None] = ContextVar("object_url", default=None)

# Characters that could end a <script> block or an HTML attribute early; JSON
# allows their \u escapes, so the decoded value is the same.
_JSON_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}
_JSON_UNSAFE.update({"\u2028": "\\u2028", "\u2029": "\\u2029"})


def to_json(value: object) -> str:
    """The value as compact JSON, safe to place inside a script or attribute."""
    if isinstance(value, Undefined):
        value = None
    text = orjson.dumps(value, default=str).decode()
    return "".join(_JSON_UNSAFE.get(char, char) for char in text)


def skip_autoescape(value: object) -> Markup:
    """Mark the value as HTML the template author trusts, so it is not escaped."""
    if isinstance(value, Undefined) or value is None:
        return Markup("")
    return Markup(str(value))


def grant_read_access(value: object) -> str:
    """Turn ``s3://bucket/key`` into a short-lived URL the worker's browser can load."""
    uri = "" if isinstance(value, Undefined) or value is None else str(value).strip()
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        return uri
    if scheme != "s3" or not urlsplit(uri).netloc:
        raise ValidationError(
            f"grant_read_access needs an s3://BUCKET/KEY or https URL; got {uri!r}",
            "UiTemplate",
        )
    sign = _object_url.get()
    return uri if sign is None else sign(uri)


@contextmanager
def object_urls(sign: ObjectUrl | None) -> Iterator[None]:
    """Let grant_read_access sign object URIs with ``sign`` while rendering."""
    token = _object_url.set(sign)
    try:
        yield
    finally:
        _object_url.reset(token)


def register_filters(environment: Environment) -> None:
    """Add A2I's filters to a Liquid environment (escape and escape_once are built in)."""
    filters: dict[str, Callable[..., Any]] = {
        "to_json": to_json,
        "skip_autoescape": skip_autoescape,
        "grant_read_access": grant_read_access,
    }
    for name, function in filters.items():
        environment.add_filter(name, function)
