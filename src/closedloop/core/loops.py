"""Human loops: start, describe, list, stop, delete, and the timers that end them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from closedloop.core.context import Context
from closedloop.core.events import Events
from closedloop.core.flows import Flows, FlowSnapshot
from closedloop.core.output import OutputAnswer, output_document, output_uri
from closedloop.core.paging import Page, PageRequest, finish, paginate
from closedloop.errors import (
    ClosedloopError,
    ConflictError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from closedloop.spec import validate_request
from closedloop.store.db import is_duplicate
from closedloop.store.models import (
    Answer,
    FlowDefinition,
    HumanLoop,
    Task,
    Worker,
)

__all__ = [
    "FINISHED",
    "LOOP_ARN_PREFIX",
    "LoopInfo",
    "Loops",
    "StartResult",
    "SweepReport",
    "TemplateCheck",
    "return_lapsed_leases",
]

logger = logging.getLogger(__name__)
LOOP_ARN_PREFIX = "human-loop/"
FINISHED = ("Completed", "Failed", "Stopped")
OPEN = ("InProgress", "Stopping")

_LOOPS = cast(Table, HumanLoop.__table__)
_TASKS = cast(Table, Task.__table__)

# Renders a task UI template with a loop's input; returns why it failed, or None.
TemplateCheck = Callable[[str, dict[str, Any]], str | None]


@dataclass(frozen=True)
class LoopInfo:
    name: str
    arn: str
    flow_name: str
    flow_arn: str
    status: str
    failure_code: str | None
    failure_reason: str | None
    created_at: datetime
    output_uri: str
    input_content: str
    task_count: int
    answer_count: int


@dataclass(frozen=True)
class StartResult:
    loop: LoopInfo
    created: bool


@dataclass(frozen=True)
class _NewLoop:
    """A checked StartHumanLoop request: its flow and the row to insert."""

    flow: FlowSnapshot
    row: dict[str, Any]


@dataclass(frozen=True)
class SweepReport:
    expired: int
    leases_returned: int
    stopped: int
    published: int = 0


class Loops:
    """The lifecycle of human loops, as A2I's runtime API exposes it."""

    def __init__(
        self,
        ctx: Context,
        flows: Flows,
        events: Events,
        check_template: TemplateCheck | None = None,
    ) -> None:
        self._ctx = ctx
        self._flows = flows
        self._events = events
        self._check_template = check_template

    def arn(self, name: str) -> str:
        return self._ctx.settings.arn(LOOP_ARN_PREFIX + name)

    def flow_arn(self, flow_name: str) -> str:
        return self._flows.arn(flow_name)

    def flow_snapshot(self, flow_name: str) -> FlowSnapshot | None:
        return self._flows.snapshot(flow_name)

    def start(
        self,
        name: str,
        flow_definition_arn: str,
        input_content: str,
        data_attributes: Mapping[str, Any] | None = None,
    ) -> StartResult:
        """Start a loop; the same name and input again returns the existing loop."""
        request: dict[str, Any] = {
            "HumanLoopName": name,
            "FlowDefinitionArn": flow_definition_arn,
            "HumanLoopInput": {"InputContent": input_content},
        }
        if data_attributes is not None:
            request["DataAttributes"] = data_attributes
        return self.start_request(request)

    def start_request(self, request: Mapping[str, Any]) -> StartResult:
        """Start a loop from a StartHumanLoop request, checked against the API model."""
        outcome = self.start_many([request])[0]
        if isinstance(outcome, ClosedloopError):
            raise outcome
        return outcome

    def start_many(
        self, requests: Sequence[Mapping[str, Any]]
    ) -> list[StartResult | ClosedloopError]:
        """Start several loops in one transaction; one outcome per request, in order.

        This is group commit: the cost of a transaction (and of its WAL flush)
        is shared by every loop in it. A request that fails validation, or
        whose name is taken with other input, gets its error as its outcome and
        does not affect the others.
        """
        outcomes: list[StartResult | ClosedloopError | None] = [None] * len(requests)
        prepared: list[tuple[int, _NewLoop]] = []
        for index, request in enumerate(requests):
            try:
                prepared.append((index, self._prepare(request)))
            except ClosedloopError as exc:
                outcomes[index] = exc
            except Exception as exc:  # one request's bug must not fail its batch
                logger.exception("could not prepare a loop start")
                outcomes[index] = ClosedloopError(
                    f"could not start this loop: internal error ({type(exc).__name__})"
                )
        for index, outcome in zip(
            [i for i, _ in prepared],
            self._commit([p for _, p in prepared]),
            strict=True,
        ):
            outcomes[index] = outcome
        return [_settled(o) for o in outcomes]

    def _prepare(self, request: Mapping[str, Any]) -> _NewLoop:
        validate_request("sagemaker-a2i-runtime", "StartHumanLoop", request)
        name = request["HumanLoopName"]
        input_content = request["HumanLoopInput"]["InputContent"]
        value = _json_object(input_content)
        flow_name = self._flows.name_from_arn(request["FlowDefinitionArn"])
        digest = hashlib.sha256(
            flow_name.encode() + b"\0" + input_content.encode()
        ).hexdigest()
        flow = self._flows.snapshot(flow_name)
        if flow is None:
            raise ValidationError(
                f"FlowDefinitionArn names flow definition {flow_name!r}, which does not exist",
                "FlowDefinitionArn",
            )
        problem = self._render_problem(flow, value)
        row = self._new_row(
            flow, name, input_content, digest, request.get("DataAttributes"), problem
        )
        return _NewLoop(flow, row)

    def _commit(self, news: Sequence[_NewLoop]) -> list[StartResult | ClosedloopError]:
        """Insert new loops together; when a concurrent writer took one of the
        names first, fall back to one transaction per loop."""
        if not news:
            return []
        try:
            placed = self._insert(news)
        except StoreError as exc:
            if not is_duplicate(exc):
                raise
            if len(news) > 1:
                return [o for new in news for o in self._commit([new])]
            placed = [None]  # started by a concurrent request with the same name
        outcomes: list[StartResult | ClosedloopError] = []
        for new, loop in zip(news, placed, strict=True):
            if loop is None:
                outcomes.append(self._existing(new))
                continue
            logger.info(
                "human loop started: %s (flow %s, TaskCount %d)",
                loop.name,
                loop.flow_name,
                loop.task_count,
            )
            outcomes.append(StartResult(self._info(loop), created=True))
        return outcomes

    def _existing(self, new: _NewLoop) -> StartResult | ClosedloopError:
        """The outcome of starting a loop whose name is taken: the same loop, or a conflict."""
        try:
            with self._ctx.db.read() as session:
                existing = self._row(session, new.row["name"])
            return StartResult(
                self._same_loop(existing, new.row["input_sha256"]), created=False
            )
        except ClosedloopError as exc:
            return exc

    def _render_problem(self, flow: FlowSnapshot, value: dict[str, Any]) -> str | None:
        """Why the flow's task UI cannot render this input (the loop then fails, as in A2I)."""
        if self._check_template is None or flow.template is None:
            return None
        problem = self._check_template(flow.template, value)
        return (
            None if problem is None else f"the task UI could not be rendered: {problem}"
        )

    def _new_row(
        self,
        flow: FlowSnapshot,
        name: str,
        content: str,
        digest: str,
        attrs: Mapping[str, Any] | None,
        problem: str | None,
    ) -> dict[str, Any]:
        now = self._ctx.clock()
        return {
            "name": name,
            "flow_name": flow.name,
            "status": "InProgress" if problem is None else "Failed",
            "failure_code": None if problem is None else "ValidationError",
            "failure_reason": None if problem is None else problem[:1024],
            "input_content": content,
            "input_sha256": digest,
            "data_attributes": None
            if attrs is None
            else orjson.dumps(dict(attrs)).decode(),
            "task_count": flow.task_count,
            "answer_count": 0,
            "created_at": now,
            "expires_at": now + timedelta(seconds=flow.availability_seconds),
            "ended_at": None if problem is None else now,
            "output_uri": output_uri(flow.output_path, flow.name, name, now),
            "output_written": False,
        }

    def _insert(self, news: Sequence[_NewLoop]) -> list[HumanLoop | None]:
        """Insert loops and their tasks; None for a name already taken, in the
        store or earlier in ``news``."""
        with self._ctx.db.write() as session:
            connection = session.connection()
            taken = set(
                connection.execute(
                    select(_LOOPS.c.name).where(
                        _LOOPS.c.name.in_({new.row["name"] for new in news})
                    )
                ).scalars()
            )
            fresh: dict[int, _NewLoop] = {}
            # In name order, so two batches that share names wait for each other
            # on PostgreSQL instead of deadlocking.
            for index, new in sorted(enumerate(news), key=lambda n: n[1].row["name"]):
                if new.row["name"] not in taken:
                    taken.add(new.row["name"])
                    fresh[index] = new
            if not fresh:
                return [None] * len(news)
            ids = connection.execute(
                insert(_LOOPS).returning(_LOOPS.c.id, sort_by_parameter_order=True),
                [new.row for new in fresh.values()],
            ).scalars()
            loops = {
                index: HumanLoop(id=loop_id, **new.row)
                for (index, new), loop_id in zip(fresh.items(), ids, strict=True)
            }
            # Tasks in request order: reviewers get loops in the order they were started.
            tasks = [
                {
                    "loop_id": loops[i].id,
                    "team_name": fresh[i].flow.team_name,
                    "status": "available",
                }
                for i in sorted(fresh)
                if loops[i].status == "InProgress"
                for _ in range(fresh[i].flow.task_count)
            ]
            if tasks:
                connection.execute(insert(_TASKS), tasks)
            for loop in loops.values():
                if loop.status == "Failed":
                    self._events.record_status_change(
                        session,
                        loop,
                        self.flow_arn(loop.flow_name),
                        self.arn(loop.name),
                    )
        return [loops.get(index) for index in range(len(news))]

    def _same_loop(self, existing: HumanLoop, digest: str) -> LoopInfo:
        if existing.input_sha256 != digest:
            raise ConflictError(
                f"HumanLoop {existing.name!r} already exists with a different flow definition or input"
            )
        return self._info(existing)

    def describe(self, name: str) -> LoopInfo:
        with self._ctx.db.read() as session:
            return self._info(self._row(session, name))

    def answers(self, name: str) -> list[OutputAnswer]:
        """The loop's stored answers in the order they arrived, as output.json records them."""
        with self._ctx.db.read() as session:
            return _output_answers(session, self._row(session, name).id)

    def list(self, flow_definition_arn: str, request: PageRequest) -> Page:
        flow_name = self._flows.name_from_arn(flow_definition_arn)
        scope = "loops:" + flow_name
        query, size = paginate(
            select(HumanLoop).where(HumanLoop.flow_name == flow_name),
            request,
            HumanLoop.created_at,
            HumanLoop.id,
            scope,
        )
        with self._ctx.db.read() as session:
            if session.get(FlowDefinition, flow_name) is None:
                raise NotFoundError(f"FlowDefinition {flow_name!r} does not exist")
            rows = list(session.scalars(query))
        page = finish(rows, size, scope, request.sort_order, "created_at", "id")
        return Page([self._info(r) for r in page.rows], page.next_token)

    def stop(self, name: str) -> LoopInfo:
        """Stop an open loop: Stopping while workers still hold its tasks, then Stopped."""
        with self._ctx.db.write() as session:
            loop = self._row(session, name, lock=True)
            if loop.status not in OPEN:
                raise ValidationError(
                    f"HumanLoop {name!r} is {loop.status}; only InProgress loops can be stopped",
                    "HumanLoopName",
                )
            session.execute(
                update(Task)
                .where(Task.loop_id == loop.id, Task.status == "available")
                .values(status="cancelled")
            )
            self._finish_stopping(session, loop)
            return self._info(loop)

    def _finish_stopping(self, session: Session, loop: HumanLoop) -> None:
        now = self._ctx.clock()
        held = session.scalar(
            select(func.count()).where(
                Task.loop_id == loop.id,
                Task.status == "leased",
                Task.lease_expires_at > now,
            )
        )
        if held:
            loop.status = "Stopping"
            return
        self._cancel_tasks(session, loop)
        self.finish(session, loop, "Stopped")

    def delete(self, name: str) -> None:
        with self._ctx.db.write() as session:
            loop = self._row(session, name, lock=True)
            if loop.status not in FINISHED:
                raise ValidationError(
                    f"HumanLoop {name!r} is {loop.status}; only Completed, Failed and Stopped loops can be deleted",
                    "HumanLoopName",
                )
            session.execute(delete(Answer).where(Answer.loop_id == loop.id))
            session.execute(delete(Task).where(Task.loop_id == loop.id))
            session.delete(loop)
        logger.info("human loop deleted: %s", name)

    def fail(self, name: str, code: str, reason: str) -> LoopInfo:
        """End an open loop as Failed, e.g. with ``ValidationError`` when its task UI cannot render."""
        with self._ctx.db.write() as session:
            loop = self._row(session, name, lock=True)
            if loop.status not in OPEN:
                raise ConflictError(f"HumanLoop {name!r} is already {loop.status}")
            self._cancel_tasks(session, loop)
            self.finish(session, loop, "Failed", code, reason)
            return self._info(loop)

    def finish(
        self,
        session: Session,
        loop: HumanLoop,
        status: str,
        code: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Move ``loop`` to a final status and record the event, in the caller's transaction."""
        loop.status = status
        loop.failure_code = code
        loop.failure_reason = reason[:1024] if reason else None
        loop.ended_at = self._ctx.clock()
        self._events.record_status_change(
            session, loop, self._flows.arn(loop.flow_name), self.arn(loop.name)
        )

    @staticmethod
    def _cancel_tasks(session: Session, loop: HumanLoop) -> None:
        session.execute(
            update(Task)
            .where(Task.loop_id == loop.id, Task.status.in_(("available", "leased")))
            .values(status="cancelled")
        )

    def publish_output(self, loop_id: int) -> None:
        """Write a Completed loop's output.json from the store, then record the Completed event.

        Runs after the completing answer is committed, so a file is never
        published for an answer the store does not hold. If the process dies in
        between, :meth:`sweep` publishes it: the answers are all in the store.
        """
        with self._ctx.db.read() as session:
            loop = session.get(HumanLoop, loop_id)
            if loop is None or loop.status != "Completed" or loop.output_written:
                return
            document = output_document(
                self.flow_arn(loop.flow_name),
                loop.name,
                loop.input_content,
                _output_answers(session, loop.id),
            )
            uri = loop.output_uri
        self._ctx.objects.write_atomic(uri, document)
        with self._ctx.db.write() as session:
            loop = session.scalar(
                select(HumanLoop).where(HumanLoop.id == loop_id).with_for_update()
            )
            if loop is None or loop.output_written:
                return
            loop.output_written = True
            self._events.record_status_change(
                session, loop, self.flow_arn(loop.flow_name), self.arn(loop.name)
            )

    def publish_pending(self, limit: int = 500) -> int:
        """Publish Completed loops whose output.json was not written (the writer died)."""
        with self._ctx.db.read() as session:
            pending = session.scalars(
                select(HumanLoop.id)
                .where(
                    HumanLoop.status == "Completed", HumanLoop.output_written.is_(False)
                )
                .limit(limit)
            ).all()
        for loop_id in pending:
            self.publish_output(loop_id)
        return len(pending)

    def sweep(self) -> SweepReport:
        """Expire loops past their availability, return lapsed leases, finish stopping loops."""
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            expired = session.scalars(
                select(HumanLoop)
                .where(HumanLoop.status == "InProgress", HumanLoop.expires_at <= now)
                .limit(1000)
            ).all()
            for loop in expired:
                self._cancel_tasks(session, loop)
                self.finish(
                    session,
                    loop,
                    "Failed",
                    "Expired",
                    "TaskAvailabilityLifetimeInSeconds passed before every answer arrived",
                )
            returned = return_lapsed_leases(session, now)
            stopping = session.scalars(
                select(HumanLoop).where(HumanLoop.status == "Stopping").limit(1000)
            ).all()
            for loop in stopping:
                self._finish_stopping(session, loop)
            stopped = sum(1 for loop in stopping if loop.status == "Stopped")
        published = self.publish_pending()
        return SweepReport(len(expired), returned, stopped, published)

    def _row(self, session: Session, name: str, *, lock: bool = False) -> HumanLoop:
        query = select(HumanLoop).where(HumanLoop.name == name)
        loop = session.scalar(query.with_for_update() if lock else query)
        if loop is None:
            raise NotFoundError(f"HumanLoop {name!r} does not exist")
        return loop

    def _info(self, loop: HumanLoop) -> LoopInfo:
        return LoopInfo(
            name=loop.name,
            arn=self.arn(loop.name),
            flow_name=loop.flow_name,
            flow_arn=self._flows.arn(loop.flow_name),
            status=loop.status,
            failure_code=loop.failure_code,
            failure_reason=loop.failure_reason,
            created_at=loop.created_at,
            output_uri=loop.output_uri,
            input_content=loop.input_content,
            task_count=loop.task_count,
            answer_count=loop.answer_count,
        )


def _output_answers(session: Session, loop_id: int) -> list[OutputAnswer]:
    rows = session.execute(
        select(Answer, Worker)
        .join(Worker, Worker.id == Answer.worker_pk)
        .where(Answer.loop_id == loop_id)
        .order_by(Answer.id)
    ).all()
    return [
        OutputAnswer(
            answer_content=orjson.loads(answer.answer_content),
            acceptance_time=answer.acceptance_time,
            submission_time=answer.submission_time,
            worker_id=worker.worker_id,
            identity={
                "identityProviderType": "closedloop",
                "issuer": "closedloop",
                "sub": worker.subject,
            },
        )
        for answer, worker in rows
    ]


def return_lapsed_leases(session: Session, now: datetime) -> int:
    """Put tasks whose lease ran out back in the queue; returns how many."""
    result = session.execute(
        update(Task)
        .where(Task.status == "leased", Task.lease_expires_at <= now)
        .values(
            status="available", worker_pk=None, leased_at=None, lease_expires_at=None
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _settled(
    outcome: StartResult | ClosedloopError | None,
) -> StartResult | ClosedloopError:
    if outcome is None:  # every request is prepared or refused above
        raise RuntimeError("a loop start was left without an outcome")
    return outcome


def _json_object(content: str) -> dict[str, Any]:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(
            f"HumanLoopInput.InputContent must be a JSON object; it is not valid JSON: {exc}",
            "HumanLoopInput.InputContent",
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(
            f"HumanLoopInput.InputContent must be a JSON object; got a JSON {type(value).__name__}",
            "HumanLoopInput.InputContent",
        )
    return value
