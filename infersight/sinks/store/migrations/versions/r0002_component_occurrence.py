"""The KServe component in every model identity; an inference row keyed by its occurrence too.

A transformer's and a predictor's events under one request id were one row, and two inferences
of a client that reuses its ``ce-id`` were one row as well. ``component`` joins the model
identity of every table (and the accuracy counts' key); ``occurrence`` (the request's CloudEvent
``time``, else the response's) joins the identity of an inference row.

Rows already stored take both from their stored attributes, and the accuracy counts are counted
again per component from the stored labels.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_UNIQUE = "uq_inferences_request_id_namespace_inferenceservice"
#: Named outright: the convention's name would pass PostgreSQL's 63 characters.
NEW_UNIQUE = "uq_inferences_identity"
IDENTITY = ["request_id", "namespace", "inferenceservice", "component", "occurrence"]


def _component() -> sa.Column[str]:
    return sa.Column("component", sa.String(253), nullable=False, server_default="")


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


def _attribute(column: sa.ColumnClause[Any], key: str) -> sa.ColumnElement[Any]:
    """One CloudEvent attribute, as text, out of a stored JSON attributes column."""
    if op.get_bind().dialect.name == "postgresql":
        return sa.func.jsonb_extract_path_text(column, key)
    return sa.func.json_extract(column, f"$.{key}")


def _recount_accuracy(by_component: bool) -> None:
    """The running counts again from the stored labels: labelled and correct per model."""
    model = ["namespace", "inferenceservice", *(["component"] if by_component else []), "endpoint"]
    accuracy = _table("model_accuracy", *model, "labelled", "correct")
    inferences = _table("inferences", *model, "correct")
    grouped = [inferences.c[name] for name in model]
    correct = inferences.c.correct
    counts = (
        sa.select(*grouped, sa.func.count(), sa.func.sum(sa.case((correct.is_(True), 1), else_=0)))
        .where(correct.is_not(None))
        .group_by(*grouped)
    )
    op.execute(accuracy.insert().from_select([*model, "labelled", "correct"], counts))


def upgrade() -> None:
    op.execute("DELETE FROM model_accuracy")  # counted again below, per component
    with op.batch_alter_table("inferences") as batch:
        batch.add_column(_component())
        batch.add_column(sa.Column("occurrence", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint(OLD_UNIQUE, type_="unique")
        batch.create_unique_constraint(NEW_UNIQUE, IDENTITY)
    for table in ("detections", "feedback"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_component())
    with op.batch_alter_table("model_accuracy") as batch:
        batch.add_column(_component())
        batch.drop_constraint("pk_model_accuracy", type_="primary")
        batch.create_primary_key(
            "pk_model_accuracy", ["namespace", "inferenceservice", "component", "endpoint"]
        )

    # As the writer has it: the request's time when the request is stored, else the response's.
    inferences = _table("inferences", "request_attributes", "response_attributes", "component", "occurrence")
    request, response = inferences.c.request_attributes, inferences.c.response_attributes
    time = sa.case((request.is_not(None), _attribute(request, "time")), else_=_attribute(response, "time"))
    op.execute(
        inferences.update().values(
            component=sa.func.coalesce(
                _attribute(request, "component"), _attribute(response, "component"), ""
            ),
            occurrence=sa.func.coalesce(sa.func.substr(time, 1, 64), ""),
        )
    )
    feedback = _table("feedback", "attributes", "component")
    op.execute(
        feedback.update().values(
            component=sa.func.coalesce(_attribute(feedback.c.attributes, "component"), "")
        )
    )
    _recount_accuracy(by_component=True)


def downgrade() -> None:
    """Back to one row per request id and model: where several rows share one, the oldest stays."""
    op.execute(
        "DELETE FROM inferences WHERE id NOT IN (SELECT MIN(id) FROM inferences "
        "GROUP BY request_id, namespace, inferenceservice)"
    )
    op.execute("DELETE FROM model_accuracy")  # counted again below, per model without component
    with op.batch_alter_table("model_accuracy") as batch:
        batch.drop_constraint("pk_model_accuracy", type_="primary")
        batch.drop_column("component")
        batch.create_primary_key("pk_model_accuracy", ["namespace", "inferenceservice", "endpoint"])
    for table in ("feedback", "detections"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("component")
    with op.batch_alter_table("inferences") as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        batch.drop_column("occurrence")
        batch.drop_column("component")
        batch.create_unique_constraint(OLD_UNIQUE, ["request_id", "namespace", "inferenceservice"])
    _recount_accuracy(by_component=False)
