"""Optional bearer tokens; several may be valid at once so that a token can be rotated."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr

from infersight.ingest.errors import IngestError


class BearerAuth:
    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._tokens = [token.get_secret_value().encode() for token in tokens]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, authorization: str | None) -> None:
        """Raise 401 unless the header carries one of the tokens (compared in constant time)."""
        if not self._tokens:
            return
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise IngestError("unauthorized", "missing bearer token (Authorization: Bearer <token>)")
        candidate = presented.strip().encode()
        # Compare against every token so the time taken does not say which one came close.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        if not matched:
            raise IngestError("unauthorized", "invalid bearer token")
