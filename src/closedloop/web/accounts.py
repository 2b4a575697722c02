"""Passwords of workers and operators: argon2 hashes, sign-in checks and lockout."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from closedloop.core.context import Context
from closedloop.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    StoreError,
    ThrottlingError,
    ValidationError,
)
from closedloop.store.db import is_duplicate
from closedloop.store.models import Worker
from closedloop.store.models_web import LoginAttempt, Operator, WebSession

__all__ = [
    "CLIENT_LOCKOUT_FAILURES",
    "LOCKOUT_FAILURES",
    "LOCKOUT_WINDOW",
    "MIN_PASSWORD_LENGTH",
    "Accounts",
    "Principal",
    "TooManyAttemptsError",
    "check_password_rule",
    "client_key",
]

logger = logging.getLogger(__name__)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
LOCKOUT_FAILURES = 5  # per username
CLIENT_LOCKOUT_FAILURES = 20  # per client address, across usernames
LOCKOUT_WINDOW = timedelta(minutes=15)
_USER_LOCKS, _CLIENT_LOCKS = 7_246_002, 7_246_003  # PostgreSQL advisory lock spaces
REALMS = ("review", "admin")
_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("closedloop-no-such-user")


class TooManyAttemptsError(ThrottlingError):
    """Too many failed sign-ins for one username, or from one address, inside the window."""


@dataclass(frozen=True)
class Principal:
    """Who a session belongs to: a worker (realm review) or an operator (realm admin)."""

    realm: str
    id: int
    name: str


def check_password_rule(password: str) -> None:
    """Refuse passwords that are too short or absurdly long; never echoes the password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters; got {len(password)}",
            "password",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"password must be at most {MAX_PASSWORD_LENGTH} characters; got {len(password)}",
            "password",
        )


class Accounts:
    """Sets passwords, creates operators and checks sign-ins against the lockout rule."""

    def __init__(self, ctx: Context, hasher: PasswordHasher | None = None) -> None:
        self._ctx = ctx
        self._hasher = hasher or _hasher

    def create_operator(self, name: str, password: str) -> None:
        _check_name(name)
        check_password_rule(password)
        digest = self._hasher.hash(password)
        try:
            with self._ctx.db.write() as session:
                if session.scalar(select(Operator).where(Operator.name == name)):
                    raise ConflictError(f"operator {name!r} already exists")
                session.add(
                    Operator(
                        name=name, password_hash=digest, created_at=self._ctx.clock()
                    )
                )
        except StoreError as exc:
            if not is_duplicate(exc):
                raise
            raise ConflictError(f"operator {name!r} already exists") from exc
        logger.info("operator created: %s", name)

    def set_worker_password(self, name: str, password: str) -> None:
        check_password_rule(password)
        digest = self._hasher.hash(password)
        with self._ctx.db.write() as session:
            worker = session.scalar(select(Worker).where(Worker.name == name))
            if worker is None:
                raise NotFoundError(f"no worker named {name!r}")
            worker.password_hash = digest
            session.execute(
                delete(WebSession).where(
                    WebSession.realm == "review", WebSession.principal_id == worker.id
                )
            )
        logger.info("worker password set: %s", name)

    def sign_in(
        self,
        realm: str,
        username: str,
        password: str,
        client: str | None = None,
        *,
        known_device: bool = False,
    ) -> Principal:
        """The principal for a correct password; raises after too many failures.

        Failures count per username (so one account cannot be guessed at) and,
        when ``client`` (the caller's address) is known, per address across
        usernames (so one caller cannot try a few passwords on every account).
        The address limit spares a username when ``known_device`` says the
        browser holds proof (a signed cookie) of an earlier sign-in of it:
        behind a shared proxy, one guesser must not lock everyone out, and a
        caller without that proof gets the same refusal for every username.

        The attempt is written down as a failure before the password is checked
        and turned into a success after, so parallel guesses meet the limits
        one at a time instead of all reading the same count.
        """
        username = username.strip()[:128]
        client = client_key(client) if client else None
        attempt = self._reserve(realm, username, client, known_device)
        found = self._lookup(realm, username)
        stored = found[1] if found else _DUMMY_HASH
        ok = _verify(stored, password[:MAX_PASSWORD_LENGTH]) and found is not None
        if not ok or found is None:
            if found is None:
                logger.info("failed sign-in to %s for an unknown username", realm)
            else:
                logger.info("failed sign-in to %s for %s", realm, username)
            raise AuthenticationError(
                "wrong username or password", "NotAuthorizedException"
            )
        self._mark_succeeded(attempt)
        logger.info("signed in to %s: %s", realm, username)
        return Principal(realm, found[0], username)

    def _reserve(
        self, realm: str, username: str, client: str | None, known_device: bool
    ) -> int:
        """Check both limits and write the attempt down, in one write transaction."""
        now = self._ctx.clock()
        since = now - LOCKOUT_WINDOW
        minutes = int(LOCKOUT_WINDOW.total_seconds() // 60)
        with self._ctx.db.write() as session:
            self._serialize(session, f"{realm}/{username}", client)
            session.execute(
                delete(LoginAttempt).where(
                    LoginAttempt.attempted_at < now - 2 * LOCKOUT_WINDOW
                )
            )
            failures = _recent_failures(session, realm, username, since)
            if failures >= LOCKOUT_FAILURES:
                raise TooManyAttemptsError(
                    f"too many failed sign-ins for {username!r}: {failures} in the "
                    f"last {minutes} minutes (the limit is {LOCKOUT_FAILURES}); "
                    "try again later"
                )
            if client is not None:
                failures = _client_failures(session, client, since)
                if failures >= CLIENT_LOCKOUT_FAILURES and not known_device:
                    logger.info(
                        "sign-in refused from %s: %d failures", client, failures
                    )
                    raise TooManyAttemptsError(
                        f"too many failed sign-ins from this address: {failures} in "
                        f"the last {minutes} minutes (the limit is "
                        f"{CLIENT_LOCKOUT_FAILURES}); try again later"
                    )
            attempt = LoginAttempt(
                realm=realm,
                username=username,
                succeeded=False,
                attempted_at=now,
                client=client,
            )
            session.add(attempt)
            session.flush()
            return attempt.id

    def _serialize(self, session: Session, user_key: str, client: str | None) -> None:
        """On PostgreSQL, one sign-in at a time per username and per address.

        SQLite's write transactions are serial already. The username lock is
        always taken before the address lock, so two sign-ins never wait on
        each other in a circle.
        """
        if self._ctx.db.is_sqlite:
            return
        lock = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
        session.execute(lock, {"space": _USER_LOCKS, "key": user_key})
        if client is not None:
            session.execute(lock, {"space": _CLIENT_LOCKS, "key": client})

    def _mark_succeeded(self, attempt: int) -> None:
        """Turn the attempt written down as a failure into a success."""
        with self._ctx.db.write() as session:
            session.execute(
                update(LoginAttempt)
                .where(LoginAttempt.id == attempt)
                .values(succeeded=True)
            )

    def _lookup(self, realm: str, username: str) -> tuple[int, str] | None:
        with self._ctx.db.read() as session:
            if realm == "admin":
                op = session.scalar(select(Operator).where(Operator.name == username))
                return (op.id, op.password_hash) if op else None
            worker = session.scalar(select(Worker).where(Worker.name == username))
            if worker is None or not worker.password_hash:
                return None
            return worker.id, worker.password_hash

    def principal(self, realm: str, principal_id: int) -> Principal | None:
        with self._ctx.db.read() as session:
            row = (
                session.get(Operator, principal_id)
                if realm == "admin"
                else session.get(Worker, principal_id)
            )
            return Principal(realm, principal_id, row.name) if row else None


def _recent_failures(
    session: Session, realm: str, username: str, since: datetime
) -> int:
    """Failures in the window after the latest success; a good sign-in resets the count."""
    last_success = session.scalar(
        select(func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.realm == realm,
            LoginAttempt.username == username,
            LoginAttempt.succeeded.is_(True),
        )
    )
    query = select(func.count()).where(
        LoginAttempt.realm == realm,
        LoginAttempt.username == username,
        LoginAttempt.succeeded.is_(False),
        LoginAttempt.attempted_at > since,
    )
    if last_success is not None:
        query = query.where(LoginAttempt.attempted_at > last_success)
    return int(session.scalar(query) or 0)


def _client_failures(session: Session, client: str, since: datetime) -> int:
    query = select(func.count()).where(
        LoginAttempt.client == client,
        LoginAttempt.succeeded.is_(False),
        LoginAttempt.attempted_at > since,
    )
    return int(session.scalar(query) or 0)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_name(name: str) -> None:
    if not name or len(name) > 128 or not name.isprintable() or name != name.strip():
        raise ValidationError(
            f"operator name must be 1-128 printable characters without surrounding spaces; got {name!r}",
            "name",
        )


def client_key(address: str) -> str:
    """The address that sign-in failures are counted against.

    An IPv6 client usually holds a whole /64 and can take a new address in it
    for every attempt, so IPv6 addresses count by their /64 network.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
