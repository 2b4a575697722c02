"""The settings table: every knob closedloop reads, with its flag, variable and rule."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from closedloop.errors import ValidationError

__all__ = ["SETTINGS", "Setting", "Settings"]


@dataclass(frozen=True)
class Setting:
    """One documented setting: its environment variable, default and meaning."""

    name: str
    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "home",
        "CLOSEDLOOP_HOME",
        ".closedloop",
        "Folder for the SQLite file, the local object store and the key file.",
    ),
    Setting(
        "database_url",
        "CLOSEDLOOP_DATABASE_URL",
        "",
        "SQLAlchemy URL of the metadata database; empty means SQLite under the home folder.",
    ),
    Setting(
        "storage_url",
        "CLOSEDLOOP_STORAGE_URL",
        "",
        "fsspec URL under which s3://BUCKET/KEY objects are kept; empty means <home>/storage.",
    ),
    Setting(
        "region",
        "CLOSEDLOOP_REGION",
        "us-east-1",
        "Region written into ARNs and accepted in SigV4 credential scopes.",
    ),
    Setting(
        "account_id",
        "CLOSEDLOOP_ACCOUNT_ID",
        "000000000000",
        "Twelve-digit account id written into ARNs.",
    ),
    Setting(
        "secret_key",
        "CLOSEDLOOP_SECRET_KEY",
        "",
        "Key that encrypts stored secrets; empty means <home>/secret.key, made on first use.",
    ),
    Setting(
        "sqlite_synchronous",
        "CLOSEDLOOP_SQLITE_SYNCHRONOUS",
        "NORMAL",
        "SQLite synchronous pragma: NORMAL survives a process crash, FULL also a power loss.",
    ),
    Setting(
        "sweep_seconds",
        "CLOSEDLOOP_SWEEP_SECONDS",
        "2",
        "How often serve expires loops, returns lapsed leases and delivers webhooks.",
    ),
    Setting(
        "template_scripts",
        "CLOSEDLOOP_TEMPLATE_SCRIPTS",
        "off",
        "Scripts of custom task templates: off, or `inline` (the template's own "
        "<script> blocks run, in the sandboxed frame) and/or https:// origins they "
        "may load scripts and stylesheets from, space-separated.",
    ),
)

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_SCRIPT_ORIGIN = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with :meth:`from_env` so every value is checked."""

    home: Path = Path(".closedloop")
    database_url: str = ""
    storage_url: str = ""
    region: str = "us-east-1"
    account_id: str = "000000000000"
    secret_key: str = field(default="", repr=False)
    sqlite_synchronous: str = "NORMAL"
    sweep_seconds: float = 2.0
    template_scripts: tuple[str, ...] = ()

    @property
    def inline_template_scripts(self) -> bool:
        """Whether a task template's own inline scripts run in the task frame."""
        return "inline" in self.template_scripts

    @property
    def template_script_origins(self) -> tuple[str, ...]:
        """Origins a task template may load scripts and stylesheets from."""
        return tuple(t for t in self.template_scripts if t != "inline")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, /, **overrides: object
    ) -> Settings:
        """Read each setting from ``overrides``, then the environment, then its default."""
        env = os.environ if environ is None else environ
        raw = {s.name: env.get(s.env) or s.default for s in SETTINGS}
        raw.update({k: str(v) for k, v in overrides.items() if v is not None})
        return cls._checked(raw)

    @classmethod
    def _checked(cls, raw: Mapping[str, str]) -> Settings:
        if not _ACCOUNT.fullmatch(raw["account_id"]):
            raise ValidationError(
                f"CLOSEDLOOP_ACCOUNT_ID must be 12 digits; got {raw['account_id']!r}",
                "account_id",
            )
        if not _REGION.fullmatch(raw["region"]):
            raise ValidationError(
                f"CLOSEDLOOP_REGION must look like 'us-east-1'; got {raw['region']!r}",
                "region",
            )
        synchronous = raw["sqlite_synchronous"].upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValidationError(
                f"CLOSEDLOOP_SQLITE_SYNCHRONOUS must be one of {_SYNCHRONOUS}; "
                f"got {raw['sqlite_synchronous']!r}",
                "sqlite_synchronous",
            )
        try:
            sweep = float(raw["sweep_seconds"])
        except ValueError:
            sweep = -1.0
        if not 0.05 <= sweep <= 3600:
            raise ValidationError(
                f"CLOSEDLOOP_SWEEP_SECONDS must be a number between 0.05 and 3600; got {raw['sweep_seconds']!r}",
                "sweep_seconds",
            )
        return cls(
            home=Path(raw["home"]).expanduser(),
            database_url=raw["database_url"],
            storage_url=raw["storage_url"].rstrip("/"),
            region=raw["region"],
            account_id=raw["account_id"],
            secret_key=raw["secret_key"],
            sqlite_synchronous=synchronous,
            sweep_seconds=sweep,
            template_scripts=_template_scripts(raw["template_scripts"]),
        )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the home folder."""
        return (
            self.database_url or f"sqlite:///{(self.home / 'closedloop.db').resolve()}"
        )

    @property
    def resolved_storage_url(self) -> str:
        """The object-store root, defaulting to ``<home>/storage``."""
        return self.storage_url or str((self.home / "storage").resolve())

    def arn(self, resource: str) -> str:
        """An ARN of this installation, e.g. ``arn(\"flow-definition/x\")``."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{resource}"


def _template_scripts(value: str) -> tuple[str, ...]:
    tokens = value.split()
    if tokens == ["off"] or not tokens:
        return ()
    for token in tokens:
        if token != "inline" and not _SCRIPT_ORIGIN.fullmatch(token):
            raise ValidationError(
                "CLOSEDLOOP_TEMPLATE_SCRIPTS must be 'off', or 'inline' and/or "
                f"origins like https://cdn.example.com; got {token!r}",
                "template_scripts",
            )
    return tuple(dict.fromkeys(tokens))
