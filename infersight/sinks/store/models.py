"""The store's tables as SQLAlchemy 2 declarative models; the migrations create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infersight.sinks.store.types import UtcDateTime, json_type

#: Constraint names fixed here, so that migrations name them the same on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

#: SQLite only auto-increments an INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Inference(Base):
    """One request and its response, whichever came first; the label once feedback names it."""

    __tablename__ = "inferences"
    __table_args__ = (
        # Named outright: the convention's name would pass PostgreSQL's 63 characters.
        UniqueConstraint(
            "request_id",
            "namespace",
            "inferenceservice",
            "component",
            "occurrence",
            name="uq_inferences_identity",
        ),
        Index(None, "namespace", "inferenceservice", "endpoint", "time", "id"),
        Index(None, "namespace", "inferenceservice", "revision", "time"),
        Index(None, "time", "id"),
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(256))
    namespace: Mapped[str] = mapped_column(String(253))
    inferenceservice: Mapped[str] = mapped_column(String(253))
    endpoint: Mapped[str] = mapped_column(String(253))
    #: The KServe component (predictor, transformer, explainer); empty when the logger did not say.
    component: Mapped[str] = mapped_column(String(253), server_default="")
    #: The revision that served it (:mod:`infersight.revisions`); empty when the event does not say.
    revision: Mapped[str] = mapped_column(String(253), server_default="")
    #: What tells inferences under one reused request id apart: the request's CloudEvent ``time``
    #: (the response's when it was stored first); empty when the events have none.
    occurrence: Mapped[str] = mapped_column(String(64), server_default="")
    #: When the inference happened: the request's event time, else the response's, else when received.
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    protocol: Mapped[str | None] = mapped_column(String(16))
    instances: Mapped[int | None] = mapped_column(Integer)

    request_event_id: Mapped[str | None] = mapped_column(String(256))
    request_attributes: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    request_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    request_content_encoding: Mapped[str | None] = mapped_column(String(32))
    request_protocol: Mapped[str | None] = mapped_column(String(16))
    request_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    request_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    inputs: Mapped[list[Any] | None] = mapped_column(json_type())
    #: JSON text ``[[column, kind], ...]``: the export's columns, without reading every row's inputs.
    input_schema: Mapped[str | None] = mapped_column(Text)

    response_event_id: Mapped[str | None] = mapped_column(String(256))
    response_attributes: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_content_encoding: Mapped[str | None] = mapped_column(String(32))
    response_protocol: Mapped[str | None] = mapped_column(String(16))
    response_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    response_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outputs: Mapped[list[Any] | None] = mapped_column(json_type())
    output_schema: Mapped[str | None] = mapped_column(Text)

    #: The logger's ``metadata`` extension (request headers) and ``annotations``, parsed.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", json_type())
    annotations: Mapped[dict[str, Any] | None] = mapped_column(json_type())

    #: ``{detector: {"kind", "scores", "flags", "threshold"}}``, one score and flag per instance.
    scores: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    outlier: Mapped[bool | None] = mapped_column(Boolean)
    outlier_score: Mapped[float | None] = mapped_column(Double)
    adversarial: Mapped[bool | None] = mapped_column(Boolean)
    adversarial_score: Mapped[float | None] = mapped_column(Double)

    #: The predicted class per instance, for classifiers; compared with the label.
    prediction: Mapped[list[Any] | None] = mapped_column(json_type())
    prediction_kind: Mapped[str | None] = mapped_column(String(8))
    label: Mapped[Any] = mapped_column(json_type(), nullable=True)
    label_kind: Mapped[str | None] = mapped_column(String(8))
    label_time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    correct: Mapped[bool | None] = mapped_column(Boolean)

    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())


class DetectionRow(Base):
    """One drift test over a window, or one outlier or adversarial verdict."""

    __tablename__ = "detections"
    __table_args__ = (
        Index(None, "namespace", "inferenceservice", "endpoint", "time", "id"),
        Index(None, "time", "id"),
    )

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    detector: Mapped[str] = mapped_column(String(253))
    kind: Mapped[str] = mapped_column(String(16))
    algorithm: Mapped[str] = mapped_column(String(253))
    namespace: Mapped[str] = mapped_column(String(253))
    inferenceservice: Mapped[str] = mapped_column(String(253))
    endpoint: Mapped[str] = mapped_column(String(253))
    component: Mapped[str] = mapped_column(String(253), server_default="")
    detected: Mapped[bool] = mapped_column(Boolean)
    statistic: Mapped[float | None] = mapped_column(Double)
    p_value: Mapped[float | None] = mapped_column(Double)
    threshold: Mapped[float | None] = mapped_column(Double)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime] = mapped_column(UtcDateTime())
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    instances: Mapped[int] = mapped_column(Integer)
    request_ids: Mapped[list[str]] = mapped_column(json_type())
    features: Mapped[list[str]] = mapped_column(json_type())
    feature_statistics: Mapped[list[float | None]] = mapped_column(json_type())
    feature_p_values: Mapped[list[float | None]] = mapped_column(json_type())
    #: The detector's version (a versioned ``uri``'s folder); empty for one not versioned.
    detector_version: Mapped[str] = mapped_column(String(128), server_default="")
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FeedbackRow(Base):
    """A ground-truth event, kept even before its inference is stored so that it applies on arrival."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("event_source", "event_id"), Index(None, "request_id"))

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    event_source: Mapped[str] = mapped_column(String(1024))
    event_id: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(256))
    request_id: Mapped[str] = mapped_column(String(256))
    #: Empty when the event does not name the model: it then applies to the request id alone;
    #: an empty component applies to every component's inference of the request id.
    namespace: Mapped[str] = mapped_column(String(253))
    inferenceservice: Mapped[str] = mapped_column(String(253))
    endpoint: Mapped[str] = mapped_column(String(253))
    component: Mapped[str] = mapped_column(String(253), server_default="")
    label: Mapped[Any] = mapped_column(json_type())
    label_kind: Mapped[str] = mapped_column(String(8))
    reward: Mapped[float | None] = mapped_column(Double)
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    attributes: Mapped[dict[str, Any]] = mapped_column(json_type())
    body: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ModelAccuracy(Base):
    """Labelled and correctly predicted inferences per model, kept as running counts."""

    __tablename__ = "model_accuracy"

    namespace: Mapped[str] = mapped_column(String(253), primary_key=True)
    inferenceservice: Mapped[str] = mapped_column(String(253), primary_key=True)
    component: Mapped[str] = mapped_column(String(253), primary_key=True, server_default="")
    endpoint: Mapped[str] = mapped_column(String(253), primary_key=True)
    labelled: Mapped[int] = mapped_column(BigInteger)
    correct: Mapped[int] = mapped_column(BigInteger)
