"""The SDK's exceptions: one base, and a subclass per thing a caller handles differently."""

from __future__ import annotations

from typing import Any

from yilian.contracts.envelope import TamperedError
from yilian.contracts.standard import RecordInvalid

__all__ = ["CustodianUnavailable", "RecordInvalid", "Refused", "TamperedError", "YilianError"]


class YilianError(Exception):
    """Base of the SDK's own errors (transport failures stay ``requests`` exceptions)."""


class Refused(YilianError):
    """The node refused the request: ``reason`` is a stable tag (e.g. ``grant_revoked``),
    ``status`` the HTTP status and ``details`` the rest of the error body."""

    def __init__(self, status: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}


class CustodianUnavailable(Refused):
    """The record's custodian node did not answer; only it can release the data key."""
