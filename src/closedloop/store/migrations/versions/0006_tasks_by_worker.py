"""Index tasks by their worker, so a claim's "not a loop I already worked" check stays cheap.

Without it PostgreSQL scanned every task for the claiming worker's (1M pending:
p50 102 ms per claim).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_worker_loop",
        "tasks",
        ["worker_pk", "loop_id"],
        sqlite_where=sa.text("worker_pk IS NOT NULL"),
        postgresql_where=sa.text("worker_pk IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_worker_loop", table_name="tasks")
