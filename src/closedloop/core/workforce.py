"""The private workforce: workteams, the workers in them, and worker tokens."""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from closedloop.core.context import Context
from closedloop.core.secrets import hash_token, new_token
from closedloop.errors import AuthenticationError, NotFoundError, ValidationError
from closedloop.store.models import TeamMember, Worker, Workteam

__all__ = ["TEAM_ARN_PREFIX", "WorkerInfo", "Workforce", "WorkteamInfo"]

logger = logging.getLogger(__name__)
TEAM_ARN_PREFIX = "workteam/private-crowd/"
_TEAM_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_TOKEN_PREFIX = "clw_"


@dataclass(frozen=True)
class WorkteamInfo:
    name: str
    arn: str
    description: str
    created_at: datetime
    updated_at: datetime
    members: tuple[str, ...]


@dataclass(frozen=True)
class WorkerInfo:
    pk: int
    name: str
    worker_id: str
    subject: str
    teams: tuple[str, ...]


class Workforce:
    """Creates teams and workers, issues tokens, and identifies workers by token."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def team_arn(self, name: str) -> str:
        return self._ctx.settings.arn(TEAM_ARN_PREFIX + name)

    def team_name_from_arn(self, arn: str, field: str) -> str:
        prefix = self._ctx.settings.arn(TEAM_ARN_PREFIX)
        if not arn.startswith(prefix):
            raise ValidationError(
                f"{field} must be a workteam ARN of this installation, {prefix}TEAM; got {arn!r}",
                field,
            )
        return arn[len(prefix) :]

    def create_team(self, name: str, description: str = "") -> WorkteamInfo:
        _check_team_name(name)
        if len(description) > 200:
            raise ValidationError(
                f"Description must be at most 200 characters; got {len(description)}",
                "Description",
            )
        with self._ctx.db.write() as session:
            if session.get(Workteam, name) is None:
                now = self._ctx.clock()
                session.add(
                    Workteam(
                        name=name,
                        description=description,
                        created_at=now,
                        updated_at=now,
                    )
                )
                logger.info("workteam created: %s", name)
        return self.describe_team(name)

    def describe_team(self, name: str) -> WorkteamInfo:
        with self._ctx.db.read() as session:
            team = session.get(Workteam, name)
            if team is None:
                raise NotFoundError(f"Workteam {name!r} does not exist")
            members = session.scalars(
                select(Worker.name)
                .join(TeamMember, TeamMember.worker_pk == Worker.id)
                .where(TeamMember.team_name == name)
            ).all()
            return WorkteamInfo(
                name,
                self.team_arn(name),
                team.description,
                team.created_at,
                team.updated_at,
                tuple(sorted(members)),
            )

    def list_teams(self) -> list[WorkteamInfo]:
        with self._ctx.db.read() as session:
            names = session.scalars(select(Workteam.name).order_by(Workteam.name)).all()
        return [self.describe_team(n) for n in names]

    def team_exists(self, session: Session, name: str) -> bool:
        return session.get(Workteam, name) is not None

    def create_worker(self, name: str, teams: list[str]) -> WorkerInfo:
        """Create a worker (or add an existing one to more teams); teams are made as needed."""
        if not _WORKER_NAME.fullmatch(name):
            raise ValidationError(
                f"worker name must be 1-128 letters, digits or _.@- starting with a letter or digit; got {name!r}",
                "name",
            )
        for team in teams:
            self.create_team(team)
        with self._ctx.db.write() as session:
            worker = session.scalar(select(Worker).where(Worker.name == name))
            if worker is None:
                worker = Worker(
                    name=name,
                    worker_id=secrets.token_hex(8),
                    subject=str(uuid.uuid4()),
                    created_at=self._ctx.clock(),
                )
                session.add(worker)
                session.flush()
                logger.info("worker created: %s", name)
            current = set(
                session.scalars(
                    select(TeamMember.team_name).where(
                        TeamMember.worker_pk == worker.id
                    )
                )
            )
            for team in set(teams) - current:
                session.add(TeamMember(team_name=team, worker_pk=worker.id))
        return self.describe_worker(name)

    def remove_from_team(self, name: str, team: str) -> None:
        with self._ctx.db.write() as session:
            worker = self._worker_row(session, name)
            session.execute(
                delete(TeamMember).where(
                    TeamMember.worker_pk == worker.id, TeamMember.team_name == team
                )
            )

    def describe_worker(self, name: str) -> WorkerInfo:
        with self._ctx.db.read() as session:
            return _worker_info(session, self._worker_row(session, name))

    def list_workers(self) -> list[WorkerInfo]:
        with self._ctx.db.read() as session:
            return [
                _worker_info(session, w)
                for w in session.scalars(select(Worker).order_by(Worker.name))
            ]

    def issue_token(self, name: str) -> str:
        """A new bearer token for the worker API; any earlier token stops working."""
        token = new_token(_TOKEN_PREFIX)
        with self._ctx.db.write() as session:
            self._worker_row(session, name).token_hash = hash_token(token)
        logger.info("worker token issued: %s", name)
        return token

    def authenticate(self, token: str) -> WorkerInfo:
        """The worker a bearer token belongs to."""
        if not token.startswith(_TOKEN_PREFIX):
            raise AuthenticationError(
                "the bearer token is not a closedloop worker token",
                "UnrecognizedClientException",
            )
        with self._ctx.db.read() as session:
            worker = session.scalar(
                select(Worker).where(Worker.token_hash == hash_token(token))
            )
            if worker is None:
                raise AuthenticationError(
                    "the bearer token is not valid", "UnrecognizedClientException"
                )
            return _worker_info(session, worker)

    @staticmethod
    def _worker_row(session: Session, name: str) -> Worker:
        worker = session.scalar(select(Worker).where(Worker.name == name))
        if worker is None:
            raise NotFoundError(f"no worker named {name!r}")
        return worker


def _check_team_name(name: str) -> None:
    if not _TEAM_NAME.fullmatch(name):
        raise ValidationError(
            f"WorkteamName must match pattern '[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,62}}'; got {name!r}",
            "WorkteamName",
        )


def _worker_info(session: Session, worker: Worker) -> WorkerInfo:
    teams = session.scalars(
        select(TeamMember.team_name).where(TeamMember.worker_pk == worker.id)
    ).all()
    return WorkerInfo(
        worker.id, worker.name, worker.worker_id, worker.subject, tuple(sorted(teams))
    )
