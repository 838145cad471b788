"""The revision that served each inference (``infersight.revisions``), for canary analysis, and
the version of the detector that made each detection.

Rows stored before keep an empty revision and version: what a stored event's ``source`` says could be read
back, but a pass over every row of a large store is a job to run on purpose, not at start-up.

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

INDEX = "ix_inferences_namespace_inferenceservice_revision_time"


def upgrade() -> None:
    with op.batch_alter_table("inferences") as table:
        table.add_column(sa.Column("revision", sa.String(253), nullable=False, server_default=""))
    op.create_index(INDEX, "inferences", ["namespace", "inferenceservice", "revision", "time"])
    with op.batch_alter_table("detections") as table:
        table.add_column(sa.Column("detector_version", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("detections") as table:
        table.drop_column("detector_version")
    op.drop_index(INDEX, table_name="inferences")
    with op.batch_alter_table("inferences") as table:
        table.drop_column("revision")
