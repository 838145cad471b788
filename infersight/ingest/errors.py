"""Why a request was refused: the HTTP status, a bounded reason label and a message for the client."""

from __future__ import annotations

from typing import Literal

RejectReason = Literal[
    "malformed", "unauthorized", "too_large", "unsupported_media_type", "kafka_unavailable"
]

STATUS_BY_REASON: dict[RejectReason, int] = {
    "malformed": 400,
    "unauthorized": 401,
    "too_large": 413,
    "unsupported_media_type": 415,
    "kafka_unavailable": 503,
}


class IngestError(Exception):
    """A refused request. ``reason`` is also the label of ``infersight_ingest_rejected_total``."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        # Messages may quote client input, and JSON input may hold lone surrogates that no UTF-8
        # answer can carry: escape them so that the refusal itself cannot fail.
        self.message = message.encode("utf-8", "backslashreplace").decode("utf-8")

    @property
    def status(self) -> int:
        return STATUS_BY_REASON[self.reason]
