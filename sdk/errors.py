"""The SDK's exceptions: one base, and a subclass per thing a caller handles differently."""

from __future__ import annotations

from typing import Any

from yilian.contracts.envelope import TamperedError
from yilian.contracts.standard import RecordInvalid

__all__ = ["CustodianUnavailable", "NotCommitted", "RecordInvalid", "Refused", "TamperedError",
           "YilianError"]


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


class NotCommitted(YilianError):
    """A signed transaction was sent but has not committed yet (the chain is slow or
    stalled): it has **not** failed. ``tx_hash`` names it; resend ``raw_transaction``
    unchanged (``Client.submit``) to get its result later. Never sign a new transaction
    for the same change: that one would commit too."""

    def __init__(self, tx_hash: str, raw_transaction: str, message: str) -> None:
        super().__init__(f"transaction {tx_hash} is not committed yet: {message}")
        self.tx_hash = tx_hash
        self.raw_transaction = raw_transaction
