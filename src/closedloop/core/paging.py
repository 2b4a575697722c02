"""Keyset pagination shared by every List operation: filters, order, NextToken."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from closedloop.errors import ValidationError

__all__ = ["Page", "PageRequest", "finish", "paginate"]

DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class PageRequest:
    """The paging arguments every List operation takes, already type-checked."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    sort_order: str = "Descending"
    max_results: int | None = None
    next_token: str | None = None


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_token: str | None


def paginate(
    query: Select[Any],
    request: PageRequest,
    created: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[Any],
    scope: str,
) -> tuple[Select[Any], int]:
    """Add filters, order, cursor and limit to ``query``; returns it and the page size.

    ``scope`` ties a NextToken to the listing it came from, so a token from one
    flow definition's loops is refused for another's.
    """
    if request.sort_order not in ("Ascending", "Descending"):
        raise ValidationError(
            f"SortOrder must be one of 'Ascending', 'Descending'; got {request.sort_order!r}",
            "SortOrder",
        )
    size = DEFAULT_PAGE_SIZE if request.max_results is None else request.max_results
    if not 1 <= size <= 100:
        raise ValidationError(
            f"MaxResults must be between 1 and 100; got {size}", "MaxResults"
        )
    if request.created_after is not None:
        query = query.where(created > request.created_after)
    if request.created_before is not None:
        query = query.where(created < request.created_before)
    ascending = request.sort_order == "Ascending"
    if request.next_token:
        after_time, after_key = _decode(request.next_token, scope, request.sort_order)
        if ascending:
            query = query.where(
                or_(created > after_time, and_(created == after_time, key > after_key))
            )
        else:
            query = query.where(
                or_(created < after_time, and_(created == after_time, key < after_key))
            )
    order = (created.asc(), key.asc()) if ascending else (created.desc(), key.desc())
    return query.order_by(*order).limit(size + 1), size


def finish(
    rows: list[Any], size: int, scope: str, sort_order: str, created: str, key: str
) -> Page:
    """Trim the extra row fetched by :func:`paginate` into a NextToken."""
    if len(rows) <= size:
        return Page(rows, None)
    last = rows[size - 1]
    return Page(
        rows[:size],
        _encode(getattr(last, created), getattr(last, key), scope, sort_order),
    )


def _encode(created: datetime, key: Any, scope: str, sort_order: str) -> str:
    raw = orjson.dumps(
        {"t": created.isoformat(), "k": key, "s": scope, "o": sort_order}
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, scope: str, sort_order: str) -> tuple[datetime, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        created = datetime.fromisoformat(data["t"])
        key = data["k"]
        valid = (
            data["s"] == scope
            and data["o"] == sort_order
            and isinstance(key, str | int)
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        valid = False
    if not valid:
        raise ValidationError(
            "NextToken is not valid for this listing; pass the token a previous call returned",
            "NextToken",
        )
    return created, key
