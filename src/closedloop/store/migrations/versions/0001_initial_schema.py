"""Initial schema: keys, workforce, task UIs, flow definitions, loops, tasks, answers, events."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name=op.f("pk_access_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_access_keys_name")),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("detail_type", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_table(
        "human_task_uis",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_human_task_uis")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("worker_id", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
        sa.UniqueConstraint("name", name=op.f("uq_workers_name")),
        sa.UniqueConstraint("subject", name=op.f("uq_workers_subject")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_workers_token_hash")),
        sa.UniqueConstraint("worker_id", name=op.f("uq_workers_worker_id")),
    )
    op.create_table(
        "workteams",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workteams")),
    )
    op.create_table(
        "deliveries",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "webhook_id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_pending",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "flow_definitions",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_name", sa.String(length=63), nullable=False),
        sa.Column("task_ui_name", sa.String(length=63), nullable=True),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("availability_seconds", sa.Integer(), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=False),
        sa.Column("output_path", sa.String(length=1024), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_name"],
            ["workteams.name"],
            name=op.f("fk_flow_definitions_team_name_workteams"),
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_flow_definitions")),
    )
    with op.batch_alter_table("flow_definitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flow_definitions_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "team_members",
        sa.Column("team_name", sa.String(length=63), nullable=False),
        sa.Column("worker_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_name"],
            ["workteams.name"],
            name=op.f("fk_team_members_team_name_workteams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_pk"],
            ["workers.id"],
            name=op.f("fk_team_members_worker_pk_workers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_name", "worker_pk", name=op.f("pk_team_members")),
    )
    op.create_table(
        "human_loops",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("flow_name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=1024), nullable=True),
        sa.Column("input_content", sa.Text(), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("data_attributes", sa.Text(), nullable=True),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("answer_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_uri", sa.String(length=2048), nullable=False),
        sa.Column(
            "output_written", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_human_loops")),
        sa.UniqueConstraint("name", name=op.f("uq_human_loops_name")),
    )
    with op.batch_alter_table("human_loops", schema=None) as batch_op:
        batch_op.create_index(
            "ix_human_loops_unpublished",
            ["id"],
            unique=False,
            sqlite_where=sa.text("status = 'Completed' AND NOT output_written"),
            postgresql_where=sa.text("status = 'Completed' AND NOT output_written"),
        )
        batch_op.create_index(
            "ix_human_loops_flow_created",
            ["flow_name", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_human_loops_open_expiry",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text("status IN ('InProgress', 'Stopping')"),
            postgresql_where=sa.text("status IN ('InProgress', 'Stopping')"),
        )

    op.create_table(
        "answers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "loop_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "task_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("worker_pk", sa.Integer(), nullable=False),
        sa.Column("answer_content", sa.Text(), nullable=False),
        sa.Column("acceptance_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submission_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["human_loops.id"],
            name=op.f("fk_answers_loop_id_human_loops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["worker_pk"], ["workers.id"], name=op.f("fk_answers_worker_pk_workers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
        sa.UniqueConstraint(
            "loop_id", "worker_pk", name=op.f("uq_answers_loop_id_worker_pk")
        ),
    )
    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "loop_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("team_name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("worker_pk", sa.Integer(), nullable=True),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["human_loops.id"],
            name=op.f("fk_tasks_loop_id_human_loops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_available",
            ["team_name", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'available'"),
            postgresql_where=sa.text("status = 'available'"),
        )
        batch_op.create_index(
            "ix_tasks_leased",
            ["lease_expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'leased'"),
            postgresql_where=sa.text("status = 'leased'"),
        )
        batch_op.create_index(
            "ix_tasks_loop_worker", ["loop_id", "worker_pk"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_loop_worker")
        batch_op.drop_index(
            "ix_tasks_leased",
            sqlite_where=sa.text("status = 'leased'"),
            postgresql_where=sa.text("status = 'leased'"),
        )
        batch_op.drop_index(
            "ix_tasks_available",
            sqlite_where=sa.text("status = 'available'"),
            postgresql_where=sa.text("status = 'available'"),
        )

    op.drop_table("tasks")
    op.drop_table("answers")
    with op.batch_alter_table("human_loops", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_human_loops_open_expiry",
            sqlite_where=sa.text("status IN ('InProgress', 'Stopping')"),
            postgresql_where=sa.text("status IN ('InProgress', 'Stopping')"),
        )
        batch_op.drop_index("ix_human_loops_flow_created")

    op.drop_table("human_loops")
    op.drop_table("team_members")
    with op.batch_alter_table("flow_definitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_definitions_created_at"))

    op.drop_table("flow_definitions")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_pending",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    op.drop_table("deliveries")
    op.drop_table("workteams")
    op.drop_table("workers")
    op.drop_table("webhooks")
    op.drop_table("human_task_uis")
    op.drop_table("events")
    op.drop_table("access_keys")
