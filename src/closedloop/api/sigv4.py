"""Server-side verification of AWS Signature Version 4 for the AWS-compatible APIs.

The canonical request is rebuilt the way botocore's signer builds it, from the
request exactly as it arrived: the percent-encoded path has its dot segments and
repeated slashes removed and is then encoded once more; query parameters are
decoded and re-encoded with AWS's unreserved set, then sorted; signed header
values have their runs of whitespace folded; the payload hash is the body's.

Adapters should hand over the ASGI scope's ``raw_path`` and ``query_string``
decoded with ``bytes.decode("utf-8", "surrogateescape")`` and header values
decoded as Latin-1, the way HTTP clients encode them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from closedloop.errors import AuthenticationError

__all__ = ["ALGORITHM", "Credential", "SignedRequest", "verify_request"]

logger = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_SCOPE_TERMINATOR = "aws4_request"
_AUTH_PARAMETERS = ("Credential", "SignedHeaders", "Signature")
_SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")
_SCOPE_DATE_PATTERN = re.compile(r"[0-9]{8}")
_QUERY_SAFE = "-_.~"
_PATH_SAFE = "/~"

_MISSING_TOKEN = "MissingAuthenticationTokenException"
_INCOMPLETE = "IncompleteSignatureException"
_UNRECOGNIZED = "UnrecognizedClientException"
_INVALID = "InvalidSignatureException"


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as the server received it, before any decoding."""

    method: str
    raw_path: str
    query_string: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Credential:
    """Who signed a verified request, and for which region and service."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class _Authorization:
    """The parsed parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/{_SCOPE_TERMINATOR}"


def verify_request(
    request: SignedRequest,
    lookup_secret: Callable[[str], str | None],
    *,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> Credential:
    """Return who signed ``request``, or raise ``AuthenticationError`` saying why not.

    ``lookup_secret`` maps an access key id to its secret (``None`` when unknown)
    and is called at most once. ``now`` defaults to the current UTC time; a
    naive ``now`` is taken as UTC.
    """
    headers = _index_headers(request.headers)
    auth = _parse_authorization(headers)
    _check_signed_headers_present(auth, headers)

    stamp, signed_at = _request_timestamp(headers)
    _check_scope_date(auth, stamp)
    _check_freshness(signed_at, _utc(now), max_skew)
    payload_hash = _payload_hash(headers, request.body)

    secret = lookup_secret(auth.access_key_id)
    if secret is None:
        logger.info(
            "Refused a request signed with unknown access key %s", auth.access_key_id
        )
        raise AuthenticationError(
            "The security token included in the request is invalid.",
            aws_code=_UNRECOGNIZED,
        )

    canonical_requests = _canonical_requests(request, auth, headers, payload_hash)
    _check_signature(auth, secret, stamp, canonical_requests)
    return Credential(auth.access_key_id, auth.region, auth.service)


def _index_headers(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name, value in headers:
        index.setdefault(name.strip().lower(), []).append(value)
    return index


def _incomplete(message: str) -> AuthenticationError:
    return AuthenticationError(message, aws_code=_INCOMPLETE)


def _invalid(message: str) -> AuthenticationError:
    return AuthenticationError(message, aws_code=_INVALID)


def _parse_authorization(headers: dict[str, list[str]]) -> _Authorization:
    values = headers.get("authorization", [])
    if not values:
        raise AuthenticationError(
            "Missing Authentication Token", aws_code=_MISSING_TOKEN
        )
    if len(values) > 1:
        raise _incomplete(f"Authorization header must appear once; got {len(values)}")

    algorithm, _, rest = values[0].strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(
            f"Authorization header must use the {ALGORITHM} algorithm; got {algorithm!r}"
        )

    parameters = _parse_auth_parameters(rest)
    absent = [name for name in _AUTH_PARAMETERS if name not in parameters]
    if absent:
        raise _incomplete(
            f"Authorization header lacks {', '.join(map(repr, absent))}; it needs Credential, SignedHeaders, Signature"
        )

    key, date, region, service = _parse_credential(parameters["Credential"])
    return _Authorization(
        access_key_id=key,
        scope_date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(parameters["SignedHeaders"]),
        signature=_parse_signature(parameters["Signature"]),
    )


def _parse_auth_parameters(text: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for part in text.split(","):
        name, separator, value = part.strip().partition("=")
        if not separator:
            raise _incomplete(
                f"Authorization parameters must be name=value pairs separated by commas; got {name!r}"
            )
        if name in parameters:
            raise _incomplete(f"Authorization parameter {name!r} must appear once")
        parameters[name] = value.strip()
    return parameters


def _parse_credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    well_formed = (
        len(parts) == 5
        and all(parts)
        and _SCOPE_DATE_PATTERN.fullmatch(parts[1]) is not None
        and parts[4] == _SCOPE_TERMINATOR
    )
    if not well_formed:
        raise _incomplete(
            f"Credential must be <access key id>/<YYYYMMDD>/<region>/<service>/{_SCOPE_TERMINATOR}; got {value!r}"
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(";"))
    if not all(names):
        raise _incomplete(
            f"SignedHeaders must be header names separated by ';'; got {value!r}"
        )
    if "host" not in names:
        raise _incomplete(f"SignedHeaders must include 'host'; got {value!r}")
    return names


def _parse_signature(value: str) -> str:
    signature = value.lower()
    if _SIGNATURE_PATTERN.fullmatch(signature) is None:
        raise _incomplete(
            f"Signature must be 64 hexadecimal characters; got {len(value)} characters"
        )
    return signature


def _check_signed_headers_present(
    auth: _Authorization, headers: dict[str, list[str]]
) -> None:
    for name in auth.signed_headers:
        if name not in headers:
            raise _incomplete(
                f"Header {name!r} is listed in SignedHeaders but absent from the request"
            )


def _request_timestamp(headers: dict[str, list[str]]) -> tuple[str, datetime]:
    """Return the signing time as ``YYYYMMDDTHHMMSSZ`` and as an aware datetime."""
    if "x-amz-date" in headers:
        stamp = headers["x-amz-date"][0].strip()
        try:
            return stamp, datetime.strptime(stamp, _TIMESTAMP_FORMAT).replace(
                tzinfo=UTC
            )
        except ValueError:
            raise _incomplete(
                f"X-Amz-Date must be in the form YYYYMMDDTHHMMSSZ; got {stamp!r}"
            ) from None
    if "date" in headers:
        signed_at = _parse_http_date(headers["date"][0])
        return signed_at.strftime(_TIMESTAMP_FORMAT), signed_at
    raise _incomplete(
        "The request must carry an X-Amz-Date header (or a Date header) giving the signing time"
    )


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise _incomplete(
            f"Date must be an HTTP date such as 'Mon, 01 Jan 2024 00:00:00 GMT'; got {value!r}"
        ) from None
    return _utc(parsed)


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _check_scope_date(auth: _Authorization, stamp: str) -> None:
    if auth.scope_date != stamp[:8]:
        raise _invalid(
            f"Credential scope date {auth.scope_date!r} must equal the date of the signing time {stamp!r}"
        )


def _check_freshness(signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    stamp = signed_at.strftime(_TIMESTAMP_FORMAT)
    earliest, latest = now - max_skew, now + max_skew
    if signed_at < earliest:
        raise _invalid(
            f"Signature expired: signed at {stamp}, before the earliest accepted time "
            f"{earliest.strftime(_TIMESTAMP_FORMAT)} (server time {now.strftime(_TIMESTAMP_FORMAT)} less {max_skew})"
        )
    if signed_at > latest:
        raise _invalid(
            f"Signature not yet current: signed at {stamp}, after the latest accepted time "
            f"{latest.strftime(_TIMESTAMP_FORMAT)} (server time {now.strftime(_TIMESTAMP_FORMAT)} plus {max_skew})"
        )


def _payload_hash(headers: dict[str, list[str]], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return actual
    # botocore signs the declared hash instead of the body, so an unchecked
    # header would let a body be swapped under a valid signature.
    if declared[0].strip() != actual:
        raise _invalid(
            f"X-Amz-Content-SHA256 must be the SHA-256 of the request body; got {declared[0]!r}"
        )
    return actual


def _canonical_requests(
    request: SignedRequest,
    auth: _Authorization,
    headers: dict[str, list[str]],
    payload_hash: str,
) -> list[str]:
    """Return the canonical request once per plausible query-string encoding."""
    path = _canonical_path(request.raw_path)
    signed_header_block = _canonical_headers(auth.signed_headers, headers)
    return [
        "\n".join(
            [
                request.method.upper(),
                path,
                query,
                signed_header_block,
                ";".join(auth.signed_headers),
                payload_hash,
            ]
        )
        for query in _canonical_queries(request.query_string)
    ]


def _canonical_path(raw_path: str) -> str:
    return quote(
        _remove_dot_segments(raw_path), safe=_PATH_SAFE, errors="surrogateescape"
    )


def _remove_dot_segments(path: str) -> str:
    """Resolve ``.`` and ``..`` and drop empty segments, keeping edge slashes."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    leading = "/" if path.startswith("/") else ""
    trailing = "/" if path.endswith("/") and kept else ""
    return leading + "/".join(kept) + trailing


def _canonical_queries(query_string: str) -> list[str]:
    """Return the re-encoded canonical query and, if it differs, the verbatim one.

    botocore encodes ``params`` itself but signs a query already in the URL as
    it stands; both forms name exactly the bytes received, so both are safe.
    """
    if not query_string:
        return [""]
    pairs = [pair.partition("=") for pair in query_string.split("&")]
    reencoded = _join_sorted(
        (_reencode(key), _reencode(value)) for key, _, value in pairs
    )
    verbatim = _join_sorted((key, value) for key, _, value in pairs)
    return [reencoded] if reencoded == verbatim else [reencoded, verbatim]


def _join_sorted(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _reencode(component: str) -> str:
    # '+' means a space here, as it does for the query parser the app uses.
    raw = unquote_to_bytes(
        component.replace("+", " ").encode("utf-8", "surrogateescape")
    )
    return quote(raw, safe=_QUERY_SAFE)


def _canonical_headers(names: tuple[str, ...], headers: dict[str, list[str]]) -> str:
    return "".join(
        f"{name}:{','.join(_fold_whitespace(v) for v in headers[name])}\n"
        for name in names
    )


def _fold_whitespace(value: str) -> str:
    return " ".join(value.split())


def _signing_key(secret: str, auth: _Authorization) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (auth.scope_date, auth.region, auth.service, _SCOPE_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check_signature(
    auth: _Authorization, secret: str, stamp: str, canonical_requests: list[str]
) -> None:
    key = _signing_key(secret, auth)
    provided = auth.signature.encode()
    for canonical_request in canonical_requests:
        digest = hashlib.sha256(
            canonical_request.encode("utf-8", "surrogateescape")
        ).hexdigest()
        string_to_sign = f"{ALGORITHM}\n{stamp}\n{auth.scope}\n{digest}"
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), provided):
            return
    logger.info(
        "Refused a request from access key %s: signature mismatch", auth.access_key_id
    )
    raise _invalid(
        "The request signature we calculated does not match the signature you provided. "
        "Check the secret access key and that nothing in the request changed after signing."
    )
