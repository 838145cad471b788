"""The SQL store: one row per inference, detections, feedback; SQLite or PostgreSQL, Alembic migrations."""

from infersight.sinks.store.engine import StoreError, make_engine
from infersight.sinks.store.feedback import FeedbackError, parse_feedback
from infersight.sinks.store.metrics import StoreMetrics
from infersight.sinks.store.migrate import current_revision, head_revision, upgrade
from infersight.sinks.store.writer import Accuracy, SqlStore, WriteCounts

__all__ = [
    "Accuracy",
    "FeedbackError",
    "SqlStore",
    "StoreError",
    "StoreMetrics",
    "WriteCounts",
    "current_revision",
    "head_revision",
    "make_engine",
    "parse_feedback",
    "upgrade",
]
