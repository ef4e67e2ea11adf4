"""The SDK's exceptions: one base, and a subclass per thing a caller handles differently.

Everything yilian refuses is a :class:`YilianError`: the node's refusals (:class:`Refused`),
the SDK's own checks, and the errors of the shared code the SDK runs locally (data
standard :class:`RecordInvalid`, credit codes :class:`CreditCodeError`, envelopes
:class:`TamperedError` / :class:`UnwrapError`), which take the same base from
:mod:`yilian.protocol.errors`. Transport failures stay ``requests`` exceptions.
"""

from __future__ import annotations

from typing import Any

from yilian.protocol.credit_code import CreditCodeError
from yilian.protocol.envelope import EnvelopeError, TamperedError, UnwrapError
from yilian.protocol.errors import YilianError
from yilian.protocol.standard import CanonicalError, RecordInvalid

__all__ = [
    "CanonicalError",
    "CreditCodeError",
    "CustodianUnavailable",
    "EnvelopeError",
    "InvalidArgument",
    "NotANode",
    "NotCommitted",
    "RecordInvalid",
    "Refused",
    "TamperedError",
    "UnwrapError",
    "WrongEncryptionKey",
    "YilianError",
]


class InvalidArgument(YilianError, ValueError):
    """An SDK call was given an argument it cannot use; the message says which and why."""


class NotANode(YilianError):
    """The URL given to :class:`~yilian.sdk.client.Client` does not answer as a yilian node."""


class WrongEncryptionKey(YilianError):
    """The caller's encryption key is not the one its member registered, so no data key
    wrapped for the member could be opened with it (checked before a read is spent)."""


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
