"""The first schema: inferences, detections, feedback and running accuracy per model.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infersight.sinks.store.models import RowId
from infersight.sinks.store.types import UtcDateTime, json_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _model() -> list[sa.Column[str]]:
    """The model identity every table carries."""
    return [
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("inferenceservice", sa.String(253), nullable=False),
        sa.Column("endpoint", sa.String(253), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "inferences",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(256), nullable=False),
        *_model(),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("protocol", sa.String(16)),
        sa.Column("instances", sa.Integer()),
        sa.Column("request_event_id", sa.String(256)),
        sa.Column("request_attributes", json_type()),
        sa.Column("request_body", sa.LargeBinary()),
        sa.Column("request_content_encoding", sa.String(32)),
        sa.Column("request_protocol", sa.String(16)),
        sa.Column("request_time", UtcDateTime()),
        sa.Column("request_received_at", UtcDateTime()),
        sa.Column("inputs", json_type()),
        sa.Column("input_schema", sa.Text()),
        sa.Column("response_event_id", sa.String(256)),
        sa.Column("response_attributes", json_type()),
        sa.Column("response_body", sa.LargeBinary()),
        sa.Column("response_content_encoding", sa.String(32)),
        sa.Column("response_protocol", sa.String(16)),
        sa.Column("response_time", UtcDateTime()),
        sa.Column("response_received_at", UtcDateTime()),
        sa.Column("outputs", json_type()),
        sa.Column("output_schema", sa.Text()),
        sa.Column("metadata", json_type()),
        sa.Column("annotations", json_type()),
        sa.Column("scores", json_type()),
        sa.Column("outlier", sa.Boolean()),
        sa.Column("outlier_score", sa.Double()),
        sa.Column("adversarial", sa.Boolean()),
        sa.Column("adversarial_score", sa.Double()),
        sa.Column("prediction", json_type()),
        sa.Column("prediction_kind", sa.String(8)),
        sa.Column("label", json_type()),
        sa.Column("label_kind", sa.String(8)),
        sa.Column("label_time", UtcDateTime()),
        sa.Column("correct", sa.Boolean()),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inferences"),
        sa.UniqueConstraint(
            "request_id",
            "namespace",
            "inferenceservice",
            name="uq_inferences_request_id_namespace_inferenceservice",
        ),
    )
    op.create_index(
        "ix_inferences_namespace_inferenceservice_endpoint_time_id",
        "inferences",
        ["namespace", "inferenceservice", "endpoint", "time", "id"],
    )
    op.create_index("ix_inferences_time_id", "inferences", ["time", "id"])

    op.create_table(
        "detections",
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("detector", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(253), nullable=False),
        *_model(),
        sa.Column("detected", sa.Boolean(), nullable=False),
        sa.Column("statistic", sa.Double()),
        sa.Column("p_value", sa.Double()),
        sa.Column("threshold", sa.Double()),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("window_end", UtcDateTime(), nullable=False),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("request_ids", json_type(), nullable=False),
        sa.Column("features", json_type(), nullable=False),
        sa.Column("feature_statistics", json_type(), nullable=False),
        sa.Column("feature_p_values", json_type(), nullable=False),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_detections"),
    )
    op.create_index(
        "ix_detections_namespace_inferenceservice_endpoint_time_id",
        "detections",
        ["namespace", "inferenceservice", "endpoint", "time", "id"],
    )
    op.create_index("ix_detections_time_id", "detections", ["time", "id"])

    op.create_table(
        "feedback",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("event_source", sa.String(1024), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("type", sa.String(256), nullable=False),
        sa.Column("request_id", sa.String(256), nullable=False),
        *_model(),
        sa.Column("label", json_type(), nullable=False),
        sa.Column("label_kind", sa.String(8), nullable=False),
        sa.Column("reward", sa.Double()),
        sa.Column("time", UtcDateTime(), nullable=False),
        sa.Column("attributes", json_type(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("event_source", "event_id", name="uq_feedback_event_source_event_id"),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])

    op.create_table(
        "model_accuracy",
        *_model(),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("correct", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "inferenceservice", "endpoint", name="pk_model_accuracy"),
    )


def downgrade() -> None:
    op.drop_table("model_accuracy")
    op.drop_index("ix_feedback_request_id", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_detections_time_id", table_name="detections")
    op.drop_index("ix_detections_namespace_inferenceservice_endpoint_time_id", table_name="detections")
    op.drop_table("detections")
    op.drop_index("ix_inferences_time_id", table_name="inferences")
    op.drop_index("ix_inferences_namespace_inferenceservice_endpoint_time_id", table_name="inferences")
    op.drop_table("inferences")
