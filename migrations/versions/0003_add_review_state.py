"""add review state: AWAITING_REVIEW and the reason a composite waits for a person; the
failure each job was last alerted for; how often the reconciliation asked for it again

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BEFORE = "'NEW','QUEUED','SEGMENTING','BG_GENERATING','COMPOSITING','UPLOADING','DONE','FAILED'"
AFTER = (
    "'NEW','QUEUED','SEGMENTING','BG_GENERATING','COMPOSITING','AWAITING_REVIEW',"
    "'UPLOADING','DONE','FAILED'"
)


def upgrade() -> None:
    # batch mode: SQLite rebuilds the table to change a constraint; PostgreSQL alters it.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("review_reason", sa.Text))
        batch.add_column(sa.Column("alerted", sa.String(128)))
        batch.add_column(
            sa.Column("reconciled", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", f"status IN ({AFTER})")


def downgrade() -> None:
    op.execute("UPDATE jobs SET status = 'COMPOSITING' WHERE status = 'AWAITING_REVIEW'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", f"status IN ({BEFORE})")
        batch.drop_column("review_reason")
        batch.drop_column("alerted")
        batch.drop_column("reconciled")
