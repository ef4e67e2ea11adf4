"""What the custodian key service answers and refuses with, shared by its single reads
(:mod:`yilian.node.key_service`), its batches (:mod:`yilian.node.key_batches`) and the
API that serves them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from yilian.node.domain import GRANT_STATUS, Located, RecordMeta, code_of
from yilian.node.tx_outcome import TxFailed


class ServiceError(Exception):
    """A refused or failed domain request: ``reason`` is a stable tag (the API's table,
    ``yilian.api.reasons``, says how each is answered); ``extra`` adds detail fields."""

    def __init__(self, reason: str, message: str,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.extra = extra or {}


class NotCustodian(Exception):
    """This node does not hold the record's key: forward to ``center``'s node."""

    def __init__(self, center: bytes) -> None:
        super().__init__(code_of(center))
        self.center = center


@dataclass(frozen=True)
class Published:
    record_id: bytes
    version: int
    digest: bytes
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    already: bool = False


@dataclass(frozen=True)
class KeyRelease:
    record_id: bytes
    version: int
    wrapped_key: bytes
    receipt_tx: bytes | None
    block_number: int | None
    block_hash: bytes | None


@dataclass(frozen=True)
class ReceiptRef:
    """Where a read's access receipt is on chain (the transaction and its block)."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes

    @classmethod
    def of(cls, located: Located) -> ReceiptRef:
        return cls(located.tx_hash, located.block_number, located.block_hash)


@dataclass(frozen=True)
class KeyItem:
    """One record version a key request asks for (``version`` None: the latest)."""

    record_id: bytes
    grant_id: int
    version: int | None = None


@dataclass(frozen=True)
class ReadPlan:
    """A checked read: what to re-wrap, and the receipt it needs (if any)."""

    meta: RecordMeta
    version: int
    reader_id: bytes
    reader_enc_key: bytes
    custodian_key: bytes  # the data key as wrapped for the custodian
    grant_id: int
    request_id: bytes | None = None
    receipt: ReceiptRef | None = None  # the committed receipt (this or an earlier attempt)
    send_receipt: bool = False  # a new read: its receipt is to be recorded

    @property
    def needs_receipt(self) -> bool:
        """Every read but the owner's of its own record leaves a receipt."""
        return self.reader_id != self.meta.owner


_ITEM_REVERT = re.compile(r"^item (\d+): (.*)$", re.DOTALL)


def refused_item(message: str, items: int) -> tuple[int, str] | None:
    """The item a ``record_access_many`` of ``items`` items reverted on (``item <i>:
    <reason>``, i from 0) and its reason; None when the message names none of them."""
    match = _ITEM_REVERT.match(message)
    if match is None or int(match.group(1)) >= items:
        return None
    return int(match.group(1)), match.group(2)


def failure(exc: TxFailed, what: str) -> ServiceError:
    """A failed center transaction as the error to report: ``commit_timeout`` says the
    transaction is still pending (with its hash), not that it failed."""
    if exc.reason == "commit_timeout":
        return ServiceError(exc.reason, f"{what}: {exc}",
                            {"status": "pending", "tx_hash": "0x" + (exc.tx_hash or b"").hex()})
    return ServiceError(exc.reason, f"{what} failed: {exc}")


def refusal(status: int, extra: dict[str, Any] | None = None) -> ServiceError:
    """The error of a read the grant does not allow (``Grants.check`` status, not 0)."""
    reason, message = GRANT_STATUS.get(status, ("refused", "refused"))
    return ServiceError(reason, f"read refused: {message}", extra)
