"""Loop status-change events in A2I's EventBridge shape, and their webhook delivery.

Events are written in the same transaction as the status change (an outbox), so
an event exists exactly when the change happened. Delivery is at least once:
each (event, webhook) pair is retried with capped exponential backoff until the
receiver answers 2xx; receivers deduplicate on the ``X-Closedloop-Event-Id``
header. Each request is signed: ``X-Closedloop-Signature: v1=<hex>`` is
HMAC-SHA256 over ``"<X-Closedloop-Timestamp>.<body>"`` with the webhook's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from closedloop.core.context import Context
from closedloop.errors import NotFoundError, ValidationError
from closedloop.store.models import Delivery, Event, HumanLoop, Webhook

__all__ = [
    "DeliveryReport",
    "Events",
    "NewWebhook",
    "WebhookInfo",
    "format_time",
    "sign",
]

logger = logging.getLogger(__name__)
STATUS_CHANGE = "SageMaker A2I HumanLoop Status Change"
PIPELINE_EVENT = "closedloop Pipeline Run Status Change"
MAX_BACKOFF_SECONDS = 3_600
_TIMEOUT = httpx.Timeout(10.0)


def format_time(moment: datetime, *, millis: bool = True) -> str:
    """A2I's timestamp form: ``2021-02-17T19:20:52.563Z``."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return (
        "v1="
        + hmac.new(
            secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
    )


@dataclass(frozen=True)
class NewWebhook:
    id: int
    url: str
    secret: str


@dataclass(frozen=True)
class WebhookInfo:
    id: int
    url: str
    created_at: datetime
    pending: int


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int


class Events:
    """Records status-change events and delivers them to webhooks."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def record_status_change(
        self, session: Session, loop: HumanLoop, flow_arn: str, loop_arn: str
    ) -> None:
        """Add the event for ``loop``'s new status to the caller's transaction."""
        now = self._ctx.clock()
        body = {
            "version": "0",
            "id": secrets.token_hex(16),
            "detail-type": STATUS_CHANGE,
            "source": "aws.sagemaker",
            "account": self._ctx.settings.account_id,
            "time": format_time(now, millis=False),
            "region": self._ctx.settings.region,
            "resources": [loop_arn],
            "detail": {
                "creationTime": format_time(loop.created_at),
                "failureCode": loop.failure_code,
                "failureReason": loop.failure_reason,
                "flowDefinitionArn": flow_arn,
                "humanLoopArn": loop_arn,
                "humanLoopName": loop.name,
                "humanLoopOutput": {"outputS3Uri": loop.output_uri},
                "humanLoopStatus": loop.status,
            },
        }
        self._add(session, STATUS_CHANGE, body)
        logger.info("human loop %s is %s", loop.name, loop.status)

    def record_pipeline_event(
        self, status: str, project: str, run_id: int, detail: dict[str, Any]
    ) -> None:
        """A pipeline event (Started, Promoted, Rejected, Failed, Succeeded) for the same webhooks."""
        now = self._ctx.clock()
        body = {
            "version": "0",
            "id": secrets.token_hex(16),
            "detail-type": PIPELINE_EVENT,
            "source": "closedloop.pipeline",
            "account": self._ctx.settings.account_id,
            "time": format_time(now, millis=False),
            "region": self._ctx.settings.region,
            "resources": [f"closedloop:pipeline/{project}/run/{run_id}"],
            "detail": {"project": project, "runId": run_id, "status": status, **detail},
        }
        with self._ctx.db.write() as session:
            self._add(session, PIPELINE_EVENT, body)
        logger.info("pipeline %s run %d: %s", project, run_id, status)

    def _add(self, session: Session, detail_type: str, body: dict[str, Any]) -> None:
        """Store the event and one pending delivery per webhook, in the caller's transaction."""
        now = self._ctx.clock()
        event = Event(
            detail_type=detail_type,
            body=orjson.dumps(body, default=str).decode(),
            created_at=now,
        )
        session.add(event)
        session.flush()
        for webhook_id in session.scalars(select(Webhook.id)):
            session.add(
                Delivery(
                    event_id=event.id,
                    webhook_id=webhook_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )

    def list_events(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._ctx.db.read() as session:
            rows = session.scalars(
                select(Event).order_by(Event.id.desc()).limit(limit)
            ).all()
            return [orjson.loads(r.body) for r in rows]

    def add_webhook(self, url: str) -> NewWebhook:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(
                f"webhook URL must be an http:// or https:// URL; got {url!r}", "url"
            )
        secret = secrets.token_urlsafe(32)
        with self._ctx.db.write() as session:
            hook = Webhook(
                url=url,
                secret_encrypted=self._ctx.secrets.encrypt(secret),
                created_at=self._ctx.clock(),
            )
            session.add(hook)
            session.flush()
            hook_id = hook.id
        logger.info("webhook added: id=%d host=%s", hook_id, parts.hostname)
        return NewWebhook(hook_id, url, secret)

    def list_webhooks(self) -> list[WebhookInfo]:
        with self._ctx.db.read() as session:
            hooks = session.scalars(select(Webhook).order_by(Webhook.id)).all()
            return [
                WebhookInfo(h.id, h.url, h.created_at, self._pending(session, h.id))
                for h in hooks
            ]

    @staticmethod
    def _pending(session: Session, webhook_id: int) -> int:
        rows = session.scalars(
            select(Delivery.event_id).where(
                Delivery.webhook_id == webhook_id, Delivery.status == "pending"
            )
        )
        return len(rows.all())

    def remove_webhook(self, webhook_id: int) -> None:
        with self._ctx.db.write() as session:
            hook = session.get(Webhook, webhook_id)
            if hook is None:
                raise NotFoundError(f"no webhook with id {webhook_id}")
            session.delete(hook)

    def deliver_due(
        self, limit: int = 50, client: httpx.Client | None = None
    ) -> DeliveryReport:
        """Send every delivery whose time has come; failures are rescheduled, never dropped."""
        due = self._due(limit)
        if not due:
            return DeliveryReport(0, 0)
        own_client = client is None
        http = client or httpx.Client(timeout=_TIMEOUT, follow_redirects=False)
        try:
            outcomes = [
                (event_id, hook_id, _post(http, url, secret, event_id, body))
                for event_id, hook_id, url, secret, body in due
            ]
        finally:
            if own_client:
                http.close()
        self._record(outcomes)
        failed = sum(1 for *_, error in outcomes if error is not None)
        return DeliveryReport(len(outcomes) - failed, failed)

    def _due(self, limit: int) -> list[tuple[int, int, str, str, bytes]]:
        now = self._ctx.clock()
        with self._ctx.db.read() as session:
            rows = session.execute(
                select(
                    Delivery.event_id,
                    Delivery.webhook_id,
                    Webhook.url,
                    Webhook.secret_encrypted,
                    Event.body,
                )
                .join(Webhook, Webhook.id == Delivery.webhook_id)
                .join(Event, Event.id == Delivery.event_id)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            ).all()
        return [
            (e, w, url, self._ctx.secrets.decrypt(enc), body.encode())
            for e, w, url, enc, body in rows
        ]

    def _record(self, outcomes: list[tuple[int, int, str | None]]) -> None:
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            for event_id, hook_id, error in outcomes:
                delivery = session.get(Delivery, (event_id, hook_id))
                if delivery is None:
                    continue
                delivery.attempts += 1
                if error is None:
                    delivery.status = "delivered"
                    continue
                delivery.last_error = error[:1024]
                backoff = min(2**delivery.attempts, MAX_BACKOFF_SECONDS)
                delivery.next_attempt_at = now + timedelta(seconds=backoff)
                logger.warning(
                    "webhook %d: delivery of event %d failed (attempt %d): %s",
                    hook_id,
                    event_id,
                    delivery.attempts,
                    error,
                )


def _post(
    http: httpx.Client, url: str, secret: str, event_id: int, body: bytes
) -> str | None:
    timestamp = str(int(datetime.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "closedloop-webhook/1",
        "X-Closedloop-Event-Id": str(event_id),
        "X-Closedloop-Timestamp": timestamp,
        "X-Closedloop-Signature": sign(secret, timestamp, body),
    }
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"
