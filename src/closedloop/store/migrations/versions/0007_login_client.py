"""Record the client address of each sign-in attempt, so guessing across usernames is limited too."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("login_attempts") as batch:
        batch.add_column(sa.Column("client", sa.String(64), nullable=True))
    op.create_index(
        "ix_login_attempts_client_time", "login_attempts", ["client", "attempted_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_login_attempts_client_time", table_name="login_attempts")
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_column("client")
