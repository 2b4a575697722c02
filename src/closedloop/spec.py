"""Request validation for the AWS-compatible APIs, compiled from botocore's API models."""

from __future__ import annotations

import functools
import logging
import math
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import botocore.exceptions
import botocore.session

from closedloop.errors import ValidationError

__all__ = [
    "MODEL_EXTENSIONS",
    "compile_model_pattern",
    "parse_timestamp",
    "validate_request",
]

logger = logging.getLogger(__name__)

# Where closedloop goes past A2I, these constraints replace the model's, keyed by
# (service, shape name). A2I caps a flow definition's TaskCount at 3, a limit its
# users often complain about; closedloop allows up to 10 distinct reviewers.
MODEL_EXTENSIONS: Final[Mapping[tuple[str, str], Mapping[str, object]]] = (
    MappingProxyType({("sagemaker", "FlowDefinitionTaskCount"): {"max": 10}})
)

_Check = Callable[[Any], None]

_INTEGER_LIMITS: Final = {
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_TIMESTAMP_RULE: Final = (
    "must be a timestamp (datetime, epoch seconds or ISO-8601 string)"
)


class _Violation(Exception):
    """A broken rule; the enclosing validators add the path on the way up."""

    def __init__(self, rule: str, segment: str | None = None) -> None:
        self.rule = rule
        self.segments = [] if segment is None else [segment]

    def render(self, field: str, parent: str) -> str:
        return f"{field} {self.rule}"


class _UnknownField(_Violation):
    """A structure received a member its shape does not have."""

    def __init__(self, name: object, allowed: str) -> None:
        super().__init__(f"allowed: {allowed}", f".{name}")
        self.name = name

    def render(self, field: str, parent: str) -> str:
        return f"Unknown field {self.name!r} in {parent}; {self.rule}"


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValidationError`` on the first way ``params`` breaks the operation's model."""
    validator = _OPERATION_VALIDATORS.get((service, operation))
    if validator is None:
        validator = _compile_operation(service, operation)
    validator(params)


def parse_timestamp(value: object, field: str) -> datetime:
    """Read a datetime, epoch seconds or an ISO-8601 string as an aware UTC datetime."""
    parsed = _to_datetime(value)
    if parsed is None:
        raise ValidationError(
            f"{field} {_TIMESTAMP_RULE}; got {_show(value)}", field=field
        )
    return parsed


def compile_model_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an API model's Java regex so ``fullmatch`` behaves as AWS's check does.

    Raises ``ValueError`` for Java syntax this translator does not cover.
    """
    try:
        return re.compile(_JavaTranslator(pattern).translate(), re.ASCII)
    except re.error as error:
        raise ValueError(f"pattern {pattern!r} does not compile: {error}") from error


# --- operations ------------------------------------------------------------------

_OPERATION_VALIDATORS: dict[tuple[str, str], _Check] = {}
_SHAPE_VALIDATORS: dict[tuple[str, str], _Check] = {}
_COMPILE_LOCK: Final = threading.Lock()


@functools.cache
def _service_model(service: str) -> Any:
    try:
        return botocore.session.get_session().get_service_model(service)
    except botocore.exceptions.DataNotFoundError as error:
        raise ValidationError(f"Unknown service {service!r}", field=None) from error


def _compile_operation(service: str, operation: str) -> _Check:
    # Other threads must never run a validator whose recursive parts are unfinished.
    with _COMPILE_LOCK:
        known = _OPERATION_VALIDATORS.get((service, operation))
        return (
            known if known is not None else _compile_new_operation(service, operation)
        )


def _compile_new_operation(service: str, operation: str) -> _Check:
    model = _service_model(service)
    if operation not in model.operation_names:
        raise ValidationError(
            f"Unknown operation {operation!r} for {service}", field=None
        )

    shape = model.operation_model(operation).input_shape
    check = _compile_shape(shape, service) if shape is not None else _accept
    validator = _report_as(check, f"{operation} request")
    _OPERATION_VALIDATORS[(service, operation)] = validator
    logger.debug("compiled request validator for %s %s", service, operation)
    return validator


def _report_as(check: _Check, request_label: str) -> _Check:
    def validate(params: Any) -> None:
        try:
            check(params)
        except _Violation as violation:
            field = _join_path(violation.segments)
            parent = _join_path(violation.segments[1:]) or request_label
            message = violation.render(field or request_label, parent)
            raise ValidationError(message, field=field or None) from None

    return validate


def _join_path(segments: list[str]) -> str:
    return "".join(reversed(segments)).lstrip(".")


def _accept(value: Any) -> None:
    return None


# --- shapes ----------------------------------------------------------------------


def _compile_shape(shape: Any, service: str) -> _Check:
    key = (service, shape.name)
    known = _SHAPE_VALIDATORS.get(key)
    if known is not None:
        return known

    # A recursive shape refers to itself; the trampoline resolves once it is built.
    built: list[_Check] = []
    _SHAPE_VALIDATORS[key] = lambda value: built[0](value)
    rules = {**shape.metadata, **MODEL_EXTENSIONS.get((service, shape.name), {})}
    builder = _BUILDERS.get(shape.type_name, _build_any)
    built.append(builder(shape, rules, service))
    _SHAPE_VALIDATORS[key] = built[0]
    return built[0]


def _build_any(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    return _accept


def _build_structure(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    if rules.get("document"):
        return _accept
    members = {name: _compile_shape(m, service) for name, m in shape.members.items()}
    required = tuple(rules.get("required", ()))
    allowed = ", ".join(members)
    is_union = bool(rules.get("union"))

    def check(value: Any) -> None:
        if not isinstance(value, Mapping):
            raise _Violation(f"must be an object; got {_show(value)}")
        for name in required:
            if value.get(name) is None:
                raise _Violation("is required", f".{name}")
        for name, item in value.items():
            member = members.get(name)
            if member is None:
                raise _UnknownField(name, allowed)
            if item is not None:
                try:
                    member(item)
                except _Violation as violation:
                    violation.segments.append(f".{name}")
                    raise
        if is_union and sum(item is not None for item in value.values()) != 1:
            raise _Violation(f"must set exactly one of {allowed}; got {_show(value)}")

    return check


def _build_list(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    member = _compile_shape(shape.member, service)
    low, high = rules.get("min", 0), rules.get("max", sys.maxsize)

    def check(value: Any) -> None:
        if not isinstance(value, list | tuple):
            raise _Violation(f"must be a list; got {_show(value)}")
        if not low <= len(value) <= high:
            raise _Violation(_size_rule(low, high, "items", len(value), "have"))
        for index, item in enumerate(value):
            try:
                member(item)
            except _Violation as violation:
                violation.segments.append(f"[{index}]")
                raise

    return check


def _build_map(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    check_key = _compile_shape(shape.key, service)
    check_value = _compile_shape(shape.value, service)
    low, high = rules.get("min", 0), rules.get("max", sys.maxsize)

    def check(value: Any) -> None:
        if not isinstance(value, Mapping):
            raise _Violation(f"must be an object; got {_show(value)}")
        if not low <= len(value) <= high:
            raise _Violation(_size_rule(low, high, "entries", len(value), "have"))
        for key, item in value.items():
            try:
                check_key(key)
            except _Violation as violation:
                raise _Violation(f"key {violation.rule}") from None
            try:
                check_value(item)
            except _Violation as violation:
                violation.segments.append(f"[{key!r}]")
                raise

    return check


def _build_string(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    low, high = rules.get("min", 0), rules.get("max", sys.maxsize)
    enum = frozenset(rules.get("enum", ()))
    choices = ", ".join(repr(choice) for choice in rules.get("enum", ()))
    pattern = rules.get("pattern")
    matches = _pattern_matcher(pattern) if pattern is not None else None

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise _Violation(f"must be a string; got {_show(value)}")
        if enum and value not in enum:
            raise _Violation(f"must be one of {choices}; got {_show(value)}")
        if not low <= len(value) <= high:
            raise _Violation(_size_rule(low, high, "characters", len(value), "be"))
        if matches is not None and matches(value) is None:
            raise _Violation(f"must match pattern '{pattern}'; got {_show(value)}")

    return check


def _build_integer(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    floor, ceiling = _INTEGER_LIMITS[shape.type_name]
    low, high = rules.get("min", floor), rules.get("max", ceiling)

    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Violation(f"must be an integer; got {_show(value)}")
        if not low <= value <= high:
            raise _Violation(f"must be between {low} and {high}; got {value!r}")

    return check


def _build_float(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    low, high = rules.get("min", -math.inf), rules.get("max", math.inf)

    def check(value: Any) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _Violation(f"must be a number; got {_show(value)}")
        if not math.isfinite(value):
            raise _Violation(f"must be a finite number; got {value!r}")
        if not low <= value <= high:
            raise _Violation(f"must be between {low} and {high}; got {value!r}")

    return check


def _build_boolean(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise _Violation(f"must be true or false; got {_show(value)}")

    return check


def _build_timestamp(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    def check(value: Any) -> None:
        if _to_datetime(value) is None:
            raise _Violation(f"{_TIMESTAMP_RULE}; got {_show(value)}")

    return check


def _build_blob(shape: Any, rules: dict[str, Any], service: str) -> _Check:
    low, high = rules.get("min", 0), rules.get("max", sys.maxsize)

    def check(value: Any) -> None:
        if not isinstance(value, bytes | bytearray | memoryview | str):
            raise _Violation(f"must be binary data; got {_show(value)}")
        if not low <= len(value) <= high:
            raise _Violation(_size_rule(low, high, "bytes", len(value), "be"))

    return check


_BUILDERS: Final[dict[str, Callable[[Any, dict[str, Any], str], _Check]]] = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "string": _build_string,
    "integer": _build_integer,
    "long": _build_integer,
    "float": _build_float,
    "double": _build_float,
    "boolean": _build_boolean,
    "timestamp": _build_timestamp,
    "blob": _build_blob,
}


def _size_rule(low: int, high: int, unit: str, got: int, verb: str) -> str:
    if high == sys.maxsize:
        return f"must {verb} at least {low} {unit}; got {got}"
    if low <= 0:
        return f"must {verb} at most {high} {unit}; got {got}"
    return f"must {verb} between {low} and {high} {unit}; got {got}"


def _show(value: object) -> str:
    if isinstance(value, str) and len(value) > 80:
        return f"{value[:60]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:100]}... ({type(value).__name__})"


def _pattern_matcher(pattern: str) -> Callable[[str], object] | None:
    try:
        return compile_model_pattern(pattern).fullmatch
    except ValueError:
        logger.warning("not checking API model pattern %r: unsupported syntax", pattern)
        return None


def _to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _as_utc(moment: datetime) -> datetime | None:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


# --- Java regular expressions ----------------------------------------------------

# Java's "." stops at every line terminator, Python's only at "\n".
_JAVA_DOT: Final = r"[^\n\r\x85\u2028\u2029]"
_ASSERTIONS: Final = {
    "b": r"(?:\b)",
    "B": r"(?:\B)",
    "A": r"(?:\A)",
    "z": r"(?:\Z)",
    "Z": r"(?:(?=(?:\r\n|[\n\r\x85\u2028\u2029])?\Z))",
}
_CHARACTER_ESCAPES: Final = {"t": 9, "n": 10, "r": 13, "f": 12, "a": 7, "e": 27}
_ASCII_CLASSES: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "Lower": ((0x61, 0x7A),),
    "Upper": ((0x41, 0x5A),),
    "ASCII": ((0x00, 0x7F),),
    "Alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "Digit": ((0x30, 0x39),),
    "Alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "Punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "Graph": ((0x21, 0x7E),),
    "Print": ((0x20, 0x7E),),
    "Blank": ((0x09, 0x09), (0x20, 0x20)),
    "Cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "XDigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
    "Space": ((0x09, 0x0D), (0x20, 0x20)),
}


class _JavaTranslator:
    """Rewrites one Java regex as a Python one with the same meaning."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.at = 0

    def translate(self) -> str:
        parts = []
        while self.at < len(self.pattern):
            parts.append(self._atom())
        return "".join(parts)

    def _next(self) -> str:
        if self.at >= len(self.pattern):
            raise ValueError(f"pattern {self.pattern!r} ends inside an escape or class")
        self.at += 1
        return self.pattern[self.at - 1]

    def _peek(self, offset: int = 0) -> str:
        return self.pattern[self.at + offset : self.at + offset + 1]

    def _atom(self) -> str:
        char = self._next()
        if char == "\\":
            return self._escape_outside()
        if char == "[":
            return self._character_class()
        if char == ".":
            return _JAVA_DOT
        if char in "^$":
            return f"(?:{char})"  # Java lets a quantifier follow an anchor
        if (
            char == "("
            and self._peek() == "?"
            and self._peek(1) == "<"
            and self._peek(2).isalpha()
        ):
            self.at += 1
            return "(?P"  # named group
        return char

    def _escape_outside(self) -> str:
        char = self._next()
        if char in _ASSERTIONS:
            return _ASSERTIONS[char]
        if char.isdigit() and char != "0":
            return f"\\{char}"  # back-reference
        fragment, code_point = self._escape(char)
        return fragment if code_point is not None else f"[{fragment}]"

    def _escape(self, char: str) -> tuple[str, int | None]:
        """Return a character-class fragment and, for one character, its code point."""
        if char in "dDsSwW":
            return f"\\{char}", None
        if char in "pP":
            return _ranges_fragment(self._property(char == "P")), None
        if char == "Q":
            end = self.pattern.find("\\E", self.at)
            end = len(self.pattern) if end < 0 else end
            quoted, self.at = self.pattern[self.at : end], end + 2
            return "".join(_literal(ord(c)) for c in quoted), None
        code_point = self._code_point(char)
        return _literal(code_point), code_point

    def _code_point(self, char: str) -> int:
        if char in _CHARACTER_ESCAPES:
            return _CHARACTER_ESCAPES[char]
        if char == "u":
            return self._utf16_escape()
        if char == "x":
            return self._hex_escape()
        if char == "0":
            digits = ""
            while len(digits) < 3 and self._peek() and self._peek() in "01234567":
                digits += self._next()
            return int(digits or "0", 8)
        if char == "c":
            return ord(self._next()) ^ 0x40
        if char.isascii() and char.isalnum():
            raise ValueError(
                f"pattern {self.pattern!r} uses unsupported escape \\{char}"
            )
        return ord(char)

    def _utf16_escape(self) -> int:
        unit = int(self._take(4), 16)
        # Java reads a UTF-16 surrogate pair written as two escapes as one character.
        if 0xD800 <= unit <= 0xDBFF and self.pattern.startswith("\\u", self.at):
            low = int(self.pattern[self.at + 2 : self.at + 6], 16)
            if 0xDC00 <= low <= 0xDFFF:
                self.at += 6
                return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        return unit

    def _hex_escape(self) -> int:
        if self._peek() != "{":
            return int(self._take(2), 16)
        end = self.pattern.index("}", self.at)
        digits, self.at = self.pattern[self.at + 1 : end], end + 1
        return int(digits, 16)

    def _take(self, count: int) -> str:
        text = self.pattern[self.at : self.at + count]
        if len(text) != count:
            raise ValueError(f"pattern {self.pattern!r} has a truncated escape")
        self.at += count
        return text

    def _property(self, negated: bool) -> list[tuple[int, int]]:
        if self._peek() == "{":
            end = self.pattern.index("}", self.at)
            name, self.at = self.pattern[self.at + 1 : end], end + 1
        else:
            name = self._next()
        ranges = _property_ranges(name)
        if ranges is None:
            raise ValueError(
                f"pattern {self.pattern!r} uses unsupported class \\p{{{name}}}"
            )
        return _complement(ranges) if negated else ranges

    def _character_class(self) -> str:
        negated = self._peek() == "^"
        self.at += negated
        if self._peek() == "]":
            raise ValueError(f"pattern {self.pattern!r} starts a class with ']'")
        parts = []
        while (char := self._next()) != "]":
            if char == "[" or (char == "&" and self._peek() == "&"):
                raise ValueError(
                    f"pattern {self.pattern!r} nests or intersects classes"
                )
            fragment, low = self._class_member(char)
            if (
                low is not None
                and self._peek() == "-"
                and self._peek(1) not in ("]", "")
            ):
                self.at += 1
                high = self._class_member(self._next())[1]
                if high is None or high < low:
                    raise ValueError(f"pattern {self.pattern!r} has a bad range")
                fragment = f"{fragment}-{_literal(high)}"
            parts.append(fragment)
        return f"[{'^' if negated else ''}{''.join(parts)}]"

    def _class_member(self, char: str) -> tuple[str, int | None]:
        if char == "\\":
            return self._escape(self._next())
        return _literal(ord(char)), ord(char)


def _literal(code_point: int) -> str:
    char = chr(code_point)
    return char if char.isascii() and char.isalnum() else f"\\U{code_point:08x}"


def _ranges_fragment(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        _literal(low) if low == high else f"{_literal(low)}-{_literal(high)}"
        for low, high in ranges
    )


def _property_ranges(name: str) -> list[tuple[int, int]] | None:
    if name in _ASCII_CLASSES:
        return list(_ASCII_CLASSES[name])
    name = name.removeprefix("Is").removeprefix("gc=").removeprefix("general_category=")
    categories = _unicode_categories()
    chosen = sorted(
        c for c in categories if c == name or (len(name) == 1 and c[0] == name)
    )
    if not chosen:
        return None
    return _merge([span for category in chosen for span in categories[category]])


@functools.cache
def _unicode_categories() -> dict[str, list[tuple[int, int]]]:
    """Code point ranges of every Unicode general category (built once, ~0.2 s)."""
    categories: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for code_point in range(1, sys.maxunicode + 2):
        category = (
            unicodedata.category(chr(code_point))
            if code_point <= sys.maxunicode
            else ""
        )
        if category != current:
            categories.setdefault(current, []).append((start, code_point - 1))
            start, current = code_point, category
    return categories


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps, start = [], 0
    for low, high in _merge(ranges):
        if low > start:
            gaps.append((start, low - 1))
        start = high + 1
    if start <= sys.maxunicode:
        gaps.append((start, sys.maxunicode))
    return gaps
