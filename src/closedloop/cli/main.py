"""Entry point of the ``closedloop`` command: serve, keys, workers, webhooks, demo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from closedloop import __version__
from closedloop.cli import demo as demo_cli
from closedloop.cli import lineage as lineage_cli
from closedloop.cli import models as models_cli
from closedloop.cli import pipeline as pipeline_cli
from closedloop.cli import serving as serving_cli
from closedloop.cli import templates as templates_cli
from closedloop.cli import web as web_cli
from closedloop.cli.common import emit, run, state
from closedloop.cli.data import data_app
from closedloop.cli.feedback import feedback_app
from closedloop.engine import Engine

__all__ = ["app", "main"]

app = typer.Typer(
    help="closedloop: human review of model predictions, and retraining on the corrections.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="Access keys for SigV4-signed API calls (boto3).", no_args_is_help=True
)
workers_app = typer.Typer(help="Workers and their teams.", no_args_is_help=True)
teams_app = typer.Typer(help="Private workteams.", no_args_is_help=True)
webhooks_app = typer.Typer(
    help="Receivers of loop status-change events.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(workers_app, name="workers")
app.add_typer(teams_app, name="teams")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(data_app, name="data")
app.add_typer(feedback_app, name="feedback")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object for scripts.")
]


@app.callback()
def _options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Home folder (default: $CLOSEDLOOP_HOME or ./.closedloop).",
            show_default=False,
        ),
    ] = None,
) -> None:
    state.home = home


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; loopback unless you mean to expose it."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark web UI cookies Secure (clients use HTTPS).")
    ] = False,
    project: Annotated[
        Path | None,
        typer.Option(
            help="Project file whose pipeline triggers run inside the server."
        ),
    ] = None,
) -> None:
    """Serve the A2I runtime, SageMaker control plane, worker API, web UI and endpoints."""
    import uvicorn

    from closedloop.api.app import create_app, proxy_options
    from closedloop.pipeline.project import load_project
    from closedloop.pipeline.triggers import Triggers

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    def start(engine: Engine) -> None:
        typer.echo(
            f"closedloop {__version__} serving {engine.settings.home.resolve()} on http://{host}:{port}",
            err=True,
        )
        triggers = Triggers(engine, load_project(project)) if project else None
        uvicorn.run(
            create_app(engine, secure_cookies=secure_cookies, triggers=triggers),
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            **proxy_options(),
        )

    run(start)


@keys_app.command("create")
def keys_create(name: str, as_json: JsonFlag = False) -> None:
    """Issue an access key; the secret is printed once, here, and never again."""
    key = run(lambda e: e.keys.create(name))
    value = {
        "Name": key.name,
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
    }
    emit(
        value,
        as_json,
        f"AccessKeyId:     {key.access_key_id}\nSecretAccessKey: {key.secret_access_key}",
    )


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List access keys (never their secrets)."""
    keys = run(lambda e: e.keys.list())
    rows = [
        {
            "Name": k.name,
            "AccessKeyId": k.access_key_id,
            "Created": k.created_at.isoformat(),
            "Disabled": k.disabled,
        }
        for k in keys
    ]
    emit(
        {"keys": rows},
        as_json,
        lambda: "\n".join(
            f"{r['Name']}\t{r['AccessKeyId']}\t{'disabled' if r['Disabled'] else 'active'}"
            for r in rows
        ),
    )


@keys_app.command("disable")
def keys_disable(name: str) -> None:
    """Disable an access key; requests signed with it are refused."""
    run(lambda e: e.keys.disable(name))
    typer.echo(f"disabled {name}")


@keys_app.command("new-secret-key")
def keys_new_secret_key() -> None:
    """Print a fresh value for CLOSEDLOOP_SECRET_KEY (the key that encrypts stored secrets)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@workers_app.command("create")
def workers_create(
    name: str,
    team: Annotated[
        list[str],
        typer.Option(
            "--team", help="Team to join (repeat for several); made if missing."
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create a worker in one or more teams."""
    worker = run(lambda e: e.workforce.create_worker(name, team))
    value = {
        "name": worker.name,
        "workerId": worker.worker_id,
        "teams": list(worker.teams),
    }
    emit(
        value,
        as_json,
        f"worker {worker.name} ({worker.worker_id}) in {', '.join(worker.teams)}",
    )


@workers_app.command("token")
def workers_token(name: str, as_json: JsonFlag = False) -> None:
    """Issue a bearer token for the worker API; any earlier token stops working."""
    token = run(lambda e: e.workforce.issue_token(name))
    emit({"token": token}, as_json, token)


@workers_app.command("list")
def workers_list(as_json: JsonFlag = False) -> None:
    """List workers and their teams."""
    workers = run(lambda e: e.workforce.list_workers())
    rows = [
        {"name": w.name, "workerId": w.worker_id, "teams": list(w.teams)}
        for w in workers
    ]
    emit(
        {"workers": rows},
        as_json,
        lambda: "\n".join(
            f"{r['name']}\t{r['workerId']}\t{','.join(r['teams'])}" for r in rows
        ),
    )


@teams_app.command("create")
def teams_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the team reviews.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a private workteam."""
    team = run(lambda e: e.workforce.create_team(name, description))
    emit({"WorkteamName": team.name, "WorkteamArn": team.arn}, as_json, team.arn)


@teams_app.command("list")
def teams_list(as_json: JsonFlag = False) -> None:
    """List workteams with their ARNs and members."""
    teams = run(lambda e: e.workforce.list_teams())
    rows = [
        {"WorkteamName": t.name, "WorkteamArn": t.arn, "members": list(t.members)}
        for t in teams
    ]
    emit(
        {"teams": rows},
        as_json,
        lambda: "\n".join(
            f"{r['WorkteamName']}\t{r['WorkteamArn']}\t{len(r['members'])} members"
            for r in rows
        ),
    )


@webhooks_app.command("add")
def webhooks_add(url: str, as_json: JsonFlag = False) -> None:
    """Send loop status-change events to URL; prints the signing secret once."""
    hook = run(lambda e: e.events.add_webhook(url))
    emit(
        {"id": hook.id, "url": hook.url, "secret": hook.secret},
        as_json,
        f"webhook {hook.id}: {hook.url}\nsigning secret: {hook.secret}",
    )


@webhooks_app.command("list")
def webhooks_list(as_json: JsonFlag = False) -> None:
    """List webhooks with the number of deliveries still pending."""
    hooks = run(lambda e: e.events.list_webhooks())
    rows = [{"id": h.id, "url": h.url, "pending": h.pending} for h in hooks]
    emit(
        {"webhooks": rows},
        as_json,
        lambda: "\n".join(
            f"{r['id']}\t{r['url']}\t{r['pending']} pending" for r in rows
        ),
    )


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: int) -> None:
    """Remove a webhook and the deliveries it still owes."""
    run(lambda e: e.events.remove_webhook(webhook_id))
    typer.echo(f"removed webhook {webhook_id}")


templates_cli.register(app)
web_cli.register(app, workers_app)
models_cli.register(app)
lineage_cli.register(app)
serving_cli.register(app)
pipeline_cli.register(app)
demo_cli.register(app)


def main() -> None:
    app()
