"""Record the human loops whose rows scored a model version (held out), apart from those it was trained on.

Versions registered before this migration get an empty list: which of their
rows were held out was not recorded, and their ``source_loops`` still name
every loop of their dataset version.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(
            sa.Column("holdout_loops", sa.Text(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("holdout_loops")
