"""Human task UIs: the worker templates that flow definitions refer to."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from closedloop.core.context import Context
from closedloop.core.paging import Page, PageRequest, finish, paginate
from closedloop.errors import ConflictError, NotFoundError, StoreError, ValidationError
from closedloop.spec import validate_request
from closedloop.store.db import is_duplicate
from closedloop.store.models import FlowDefinition, HumanTaskUi

__all__ = ["TASK_UI_ARN_PREFIX", "TaskUiInfo", "TaskUis"]

logger = logging.getLogger(__name__)
TASK_UI_ARN_PREFIX = "human-task-ui/"


@dataclass(frozen=True)
class TaskUiInfo:
    name: str
    arn: str
    created_at: datetime
    content: str
    content_sha256: str


class TaskUis:
    """Create, describe, list and delete human task UIs."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def arn(self, name: str) -> str:
        return self._ctx.settings.arn(TASK_UI_ARN_PREFIX + name)

    def name_from_arn(self, arn: str, field: str) -> str:
        prefix = self._ctx.settings.arn(TASK_UI_ARN_PREFIX)
        if not arn.startswith(prefix):
            raise ValidationError(
                f"{field} must be a human task UI ARN of this installation, {prefix}NAME; got {arn!r}",
                field,
            )
        return arn[len(prefix) :]

    def create(self, name: str, content: str) -> TaskUiInfo:
        return self.create_request(
            {"HumanTaskUiName": name, "UiTemplate": {"Content": content}}
        )

    def create_request(self, request: Mapping[str, Any]) -> TaskUiInfo:
        """Create from a CreateHumanTaskUi request, checked against the API model."""
        validate_request("sagemaker", "CreateHumanTaskUi", request)
        name, content = request["HumanTaskUiName"], request["UiTemplate"]["Content"]
        digest = hashlib.sha256(content.encode()).hexdigest()
        try:
            with self._ctx.db.write() as session:
                if session.get(HumanTaskUi, name) is not None:
                    raise ConflictError(f"HumanTaskUi {name!r} already exists")
                session.add(
                    HumanTaskUi(
                        name=name,
                        content=content,
                        content_sha256=digest,
                        created_at=self._ctx.clock(),
                    )
                )
        except StoreError as exc:
            if not is_duplicate(exc):
                raise
            raise ConflictError(f"HumanTaskUi {name!r} already exists") from exc
        logger.info("human task UI created: %s", name)
        return self.describe(name)

    def describe(self, name: str) -> TaskUiInfo:
        with self._ctx.db.read() as session:
            row = session.get(HumanTaskUi, name)
            if row is None:
                raise NotFoundError(f"HumanTaskUi {name!r} does not exist")
            return self._info(row)

    def list(self, request: PageRequest) -> Page:
        query, size = paginate(
            select(HumanTaskUi),
            request,
            HumanTaskUi.created_at,
            HumanTaskUi.name,
            "task-uis",
        )
        with self._ctx.db.read() as session:
            rows = [self._info(r) for r in session.scalars(query)]
        return finish(rows, size, "task-uis", request.sort_order, "created_at", "name")

    def delete(self, name: str) -> None:
        with self._ctx.db.write() as session:
            row = session.get(HumanTaskUi, name)
            if row is None:
                raise NotFoundError(f"HumanTaskUi {name!r} does not exist")
            users = session.scalars(
                select(FlowDefinition.name)
                .where(FlowDefinition.task_ui_name == name)
                .limit(3)
            ).all()
            if users:
                raise ConflictError(
                    f"HumanTaskUi {name!r} is used by flow definitions {', '.join(users)}; delete them first"
                )
            session.delete(row)
        logger.info("human task UI deleted: %s", name)

    def _info(self, row: HumanTaskUi) -> TaskUiInfo:
        return TaskUiInfo(
            row.name,
            self.arn(row.name),
            row.created_at,
            row.content,
            row.content_sha256,
        )
