"""The validator's signing guard: never sign two different votes for one height/round/step.

Modelled on CometBFT's "last sign state": before a consensus message is signed, the
guard checks it against the last thing this validator signed and records the new one
with a synced write (the write-ahead log, ``w`` prefix) **before** the signature is
returned, so before anything can be sent. A crash at any point therefore leaves one of:

* nothing recorded and nothing sent: signing again later is safe;
* recorded (and perhaps sent): after a restart the same message gets the same stored
  signature back, and a conflicting one is refused.

Rules, with steps ordered PROPOSE < PREVOTE < PRECOMMIT:

* (h, r, s) below the last signed (h, r, s): refused (``Regression``);
* equal (h, r, s) and identical sign bytes: the stored signature is returned;
* equal (h, r, s) and different sign bytes: refused (``DoubleSign``);
* above: signed and recorded.

The guard also keeps, per height, the last non-nil PRECOMMIT it signed (the paper's
``lockedValue``/``lockedRound``), so a restarted validator restores its lock instead of
forgetting it, which Tendermint's safety across rounds depends on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import msgpack

from yilian.node.storage import WAL, Store

_LAST_SIGNED = b"last-signed"
_LOCK = b"lock"


class Step(IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


class SigningRefused(Exception):
    """The guard refused to sign; signing would risk equivocation."""


class DoubleSign(SigningRefused):
    """A different message was already signed for this height/round/step."""


class Regression(SigningRefused):
    """The message is for an earlier height/round/step than one already signed."""


@dataclass(frozen=True)
class SignedRecord:
    height: int
    round: int
    step: Step
    sign_bytes: bytes
    signature: bytes

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))


class SigningGuard:
    """Wraps a raw ``sign(bytes) -> bytes`` with the double-sign protection above."""

    def __init__(self, store: Store, sign: Callable[[bytes], bytes]) -> None:
        self._store = store
        self._sign = sign
        self._lock = threading.Lock()
        self._last = self._load()

    def _load(self) -> SignedRecord | None:
        raw = self._store.get(WAL, _LAST_SIGNED)
        if raw is None:
            return None
        h, r, s, sign_bytes, sig = msgpack.unpackb(raw)
        return SignedRecord(h, r, Step(s), sign_bytes, sig)

    @property
    def last(self) -> SignedRecord | None:
        return self._last

    def lock(self, height: int) -> tuple[int, bytes] | None:
        """(round, value id) of the last non-nil precommit signed at ``height``, if any."""
        raw = self._store.get(WAL, _LOCK)
        if raw is None:
            return None
        h, r, value_id = msgpack.unpackb(raw)
        return (r, value_id) if h == height else None

    def sign(self, height: int, round_: int, step: Step, sign_bytes: bytes,
             value_id: bytes | None = None) -> bytes:
        """Sign ``sign_bytes`` as this validator's (height, round, step) message.

        ``value_id`` (the voted value, None for nil) lets the guard remember locks.
        """
        with self._lock:
            last = self._last
            hrs = (height, round_, int(step))
            if last is not None:
                if hrs < last.hrs:
                    raise Regression(
                        f"refusing to sign height {height} round {round_} {step.name}: already "
                        f"signed height {last.height} round {last.round} {last.step.name}")
                if hrs == last.hrs:
                    if sign_bytes == last.sign_bytes:
                        return last.signature
                    raise DoubleSign(
                        f"refusing to sign a second, different {step.name} for height {height} "
                        f"round {round_}")
            signature = self._sign(sign_bytes)
            record = SignedRecord(height, round_, step, bytes(sign_bytes), bytes(signature))
            writes: dict[bytes, bytes | None] = {WAL + _LAST_SIGNED: msgpack.packb(
                [height, round_, int(step), record.sign_bytes, record.signature])}
            if step is Step.PRECOMMIT and value_id is not None:
                writes[WAL + _LOCK] = msgpack.packb([height, round_, bytes(value_id)])
            self._store.commit(None, writes)  # one synced batch
            self._last = record
            return record.signature
