"""create jobs, shopify_map, metadata and intake

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("img_sha256", sa.String(64), nullable=False),
        sa.Column("theme", sa.String(64), nullable=False),
        sa.Column("partition_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="NEW"),
        sa.Column("source_url", sa.Text),
        sa.Column("original_key", sa.String(512)),
        sa.Column("mask_key", sa.String(512)),
        sa.Column("background_key", sa.String(512)),
        sa.Column("composite_key", sa.String(512)),
        sa.Column("shopify_product_id", sa.String(128)),
        sa.Column("shopify_variant_id", sa.String(128)),
        sa.Column("shopify_media_id", sa.String(128)),
        sa.Column("cost_usd", sa.Numeric(12, 6), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("sku", "img_sha256", "theme", name="uq_jobs_sku_sha_theme"),
        sa.CheckConstraint(
            "status IN ('NEW','QUEUED','SEGMENTING','BG_GENERATING','COMPOSITING',"
            "'UPLOADING','DONE','FAILED')",
            name="ck_jobs_status",
        ),
    )
    op.create_index("ix_jobs_status_updated_at", "jobs", ["status", "updated_at"])
    op.create_index("ix_jobs_sku_sha", "jobs", ["sku", "img_sha256"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_partition_key", "jobs", ["partition_key"])

    op.create_table(
        "shopify_map",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("product_id", sa.String(128)),
        sa.Column("variant_id", sa.String(128)),
        sa.Column("handle", sa.String(255)),
        sa.Column("title", sa.Text),
        sa.Column("sync_status", sa.String(32), nullable=False, server_default="pending"),
        sa.Column("last_synced_at", TS),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "metadata",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
    )

    op.create_table(
        "intake",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(128)),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("img_sha256", sa.String(64), nullable=False),
        sa.Column("image_url", sa.Text),
        sa.Column("original_key", sa.String(512)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("partition_key", sa.String(100)),
        sa.Column("payload", sa.JSON),
        sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("delivery_id", name="uq_intake_delivery_id"),
        sa.UniqueConstraint("event", "sku", "img_sha256", name="uq_intake_event_sku_sha"),
        sa.UniqueConstraint("partition_key", name="uq_intake_partition_key"),
    )
    op.create_index("ix_intake_status_id", "intake", ["status", "id"])

    # The seed's auto-update trigger for jobs.updated_at, where the database has triggers
    # with functions; SQLite gets the same behaviour from the ORM's onupdate.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION imgpipe_touch_updated_at() RETURNS trigger AS $$
            BEGIN NEW.updated_at = now(); RETURN NEW; END;
            $$ LANGUAGE plpgsql;
            """
        )
        op.execute(
            "CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON jobs "
            "FOR EACH ROW EXECUTE FUNCTION imgpipe_touch_updated_at();"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_touch_updated_at ON jobs")
        op.execute("DROP FUNCTION IF EXISTS imgpipe_touch_updated_at()")
    op.drop_table("intake")
    op.drop_table("metadata")
    op.drop_table("shopify_map")
    op.drop_table("jobs")
