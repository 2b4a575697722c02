"""Endpoints: a name bound to a model version or alias and, optionally, a flow definition."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import select

from closedloop.core.context import Context
from closedloop.core.flows import Flows
from closedloop.errors import NotFoundError, ValidationError
from closedloop.store.models_serving import EndpointRow

__all__ = [
    "DEFAULT_ALIAS",
    "EndpointInfo",
    "Endpoints",
    "LoadedModelLike",
    "RegistryLike",
    "check_endpoint_name",
    "parse_model_ref",
]

logger = logging.getLogger(__name__)
DEFAULT_ALIAS = "production"
# botocore's sagemaker-runtime model: EndpointName is at most 63 of these.
_ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
_ALIAS = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}")


class LoadedModelLike(Protocol):
    """What serving needs of a loaded model version (the registry's ``LoadedModel``)."""

    model: str
    version: int
    classes: list[str]
    feature_columns: list[str]
    feature_dtypes: dict[str, str]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]: ...


class ModelVersionLike(Protocol):
    @property
    def version(self) -> int: ...


class RegistryLike(Protocol):
    """The part of the model registry that serving uses."""

    def get(self, model: str, ref: str | int | None = None) -> ModelVersionLike: ...

    def load(self, model: str, ref: str | int | None = None) -> LoadedModelLike: ...

    def alias_version(self, model: str, alias: str) -> int | None: ...

    def read_onnx(self, model: str, ref: str | int | None = None) -> bytes: ...


@dataclass(frozen=True)
class EndpointInfo:
    """An endpoint as stored; ``ref`` is ``"3"`` for a version or ``"@production"``."""

    name: str
    model: str
    ref: str
    flow_name: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def alias(self) -> str | None:
        return self.ref[1:] if self.ref.startswith("@") else None

    @property
    def registry_ref(self) -> str | int:
        """The ref as the registry takes it: a version number or ``"@alias"``."""
        return self.ref if self.alias is not None else int(self.ref)

    @property
    def model_ref(self) -> str:
        """How ``closedloop deploy`` spells it: ``MODEL:3`` or ``MODEL@production``."""
        return self.model + (self.ref if self.alias is not None else f":{self.ref}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "EndpointName": self.name,
            "Model": self.model,
            "Ref": self.ref,
            "FlowDefinitionName": self.flow_name,
            "CreationTime": self.created_at.isoformat(),
            "LastModifiedTime": self.updated_at.isoformat(),
        }


def parse_model_ref(text: str, field: str = "MODEL") -> tuple[str, str]:
    """Split ``MODEL``, ``MODEL:VERSION`` or ``MODEL@ALIAS``; a bare model means @production."""
    model, sep, alias = text.partition("@")
    if sep:
        _check_alias(alias, field)
        return _checked_model(model, field), "@" + alias
    model, sep, version = text.partition(":")
    if not sep:
        return _checked_model(model, field), "@" + DEFAULT_ALIAS
    if not version.isdigit() or int(version) < 1:
        raise ValidationError(
            f"{field} must be MODEL, MODEL:VERSION (a positive integer) or MODEL@ALIAS; got {text!r}",
            field,
        )
    return _checked_model(model, field), str(int(version))


def _checked_model(model: str, field: str) -> str:
    if not model or len(model) > 128 or not model.isprintable() or " " in model:
        raise ValidationError(
            f"{field} must start with a model name of 1 to 128 printable characters without spaces; got {model!r}",
            field,
        )
    return model


def _check_alias(alias: str, field: str) -> None:
    if not _ALIAS.fullmatch(alias):
        raise ValidationError(
            f"{field} alias must be 1 to 63 letters, digits, '_' or '-'; got {alias!r}",
            field,
        )


def check_endpoint_name(name: str, field: str = "EndpointName") -> None:
    """Refuse a name that SageMaker's EndpointName pattern would refuse."""
    if len(name) > 63 or not _ENDPOINT_NAME.fullmatch(name):
        raise ValidationError(
            f"{field} must be 1 to 63 letters, digits and inner hyphens; got {name!r}",
            field,
        )


class Endpoints:
    """Deploy, describe, list and delete endpoints; the runtime serves them."""

    def __init__(self, ctx: Context, registry: RegistryLike, flows: Flows) -> None:
        self._ctx = ctx
        self._registry = registry
        self._flows = flows

    def deploy(
        self, name: str, model: str, ref: str, flow_name: str | None = None
    ) -> EndpointInfo:
        """Bind ``name`` to ``model`` at ``ref``; deploying an existing name rebinds it."""
        check_endpoint_name(name)
        _checked_model(model, "MODEL")
        if ref.startswith("@"):
            _check_alias(ref[1:], "MODEL")
        version = self._registry.get(model, ref if ref.startswith("@") else int(ref))
        if flow_name is not None:
            self._flows.describe(flow_name)
        now = self._ctx.clock()
        with self._ctx.db.write() as session:
            row = session.get(EndpointRow, name)
            if row is None:
                row = EndpointRow(name=name, created_at=now)
                session.add(row)
            row.model, row.ref, row.flow_name, row.updated_at = (
                model,
                ref,
                flow_name,
                now,
            )
            info = _info(row)
        logger.info(
            "endpoint deployed: %s -> %s (now version %d, flow %s)",
            name,
            info.model_ref,
            version.version,
            flow_name or "none",
        )
        return info

    def describe(self, name: str) -> EndpointInfo:
        with self._ctx.db.read() as session:
            row = session.get(EndpointRow, name)
            if row is None:
                raise NotFoundError(f"Endpoint {name!r} does not exist")
            return _info(row)

    def list(self) -> list[EndpointInfo]:
        with self._ctx.db.read() as session:
            rows = session.scalars(select(EndpointRow).order_by(EndpointRow.name))
            return [_info(row) for row in rows]

    def delete(self, name: str) -> None:
        with self._ctx.db.write() as session:
            row = session.get(EndpointRow, name)
            if row is None:
                raise NotFoundError(f"Endpoint {name!r} does not exist")
            session.delete(row)
        logger.info("endpoint deleted: %s", name)


def _info(row: EndpointRow) -> EndpointInfo:
    return EndpointInfo(
        name=row.name,
        model=row.model,
        ref=row.ref,
        flow_name=row.flow_name,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
