"""The validator's sign log and signing guard: never sign two different messages for one
height/round/step, and remember everything signed in the current height.

Modelled on CometBFT's "last sign state" plus its consensus WAL: before a consensus message
is signed, the guard checks it against what this validator already signed and records the
new one with a synced write (the write-ahead log, ``w`` prefix) **before** the signature is
returned, so before anything can be sent. A crash at any point therefore leaves one of:

* nothing recorded and nothing sent: signing again later is safe;
* recorded (and perhaps sent): after a restart the same message gets the same stored
  signature back, a conflicting one is refused, and the recorded message can be sent again.

Records (``w`` prefix):

* ``last-signed`` -> ``[h, r, step, sign_bytes, signature]``: the highest (h, r, step) ever
  signed; it survives pruning, so nothing earlier is ever signed again.
* ``log/`` + height(8) + round(4) + step(1) -> ``[sign_bytes, signature, value_id,
  valid_round]``: every message signed in the heights not yet committed (the sign log).
* ``blk/`` + height(8) + value id -> the block (wire encoding) of a signed proposal or of a
  non-nil precommit, so a restarted validator can re-send its proposal and re-propose the
  value it is locked on even if every other copy of that block was lost.

The log of a height is pruned in the batch that commits its block
(:meth:`SigningGuard.prune_writes`).

Rules, with steps ordered PROPOSE < PREVOTE < PRECOMMIT:

* the same (h, r, step) already in the log (or the last signed one): identical sign bytes
  get the stored signature back, different ones are refused (``DoubleSign``);
* otherwise below the last signed (h, r, step): refused (``Regression``);
* above: signed and recorded.

The lock (the paper's ``lockedValue``/``lockedRound``) is the non-nil PRECOMMIT of the
highest round in the height's log, so a restarted validator restores it instead of
forgetting it, which Tendermint's safety across rounds depends on.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import msgpack

from yilian.node.storage import LAST_SIGNED, SIGN_LOG, SIGNED_BLOCK, WAL, Store


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
    """One signed message. ``value_id`` is None for a nil vote; ``valid_round`` is the
    proposal's (-1 for votes)."""

    height: int
    round: int
    step: Step
    sign_bytes: bytes
    signature: bytes
    value_id: bytes | None = None
    valid_round: int = -1

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, int(self.step))


def _log_key(height: int, round_: int, step: Step) -> bytes:
    return SIGN_LOG + struct.pack(">QIB", height, round_, int(step))


def _block_key(height: int, value_id: bytes) -> bytes:
    return SIGNED_BLOCK + struct.pack(">Q", height) + value_id


class SigningGuard:
    """Wraps a raw ``sign(bytes) -> bytes`` with the double-sign protection above and keeps
    the sign log of the heights not yet committed."""

    def __init__(self, store: Store, sign: Callable[[bytes], bytes]) -> None:
        self._store = store
        self._sign = sign
        self._lock = threading.Lock()
        self._last = self._load_last()
        self._log: dict[tuple[int, int, int], SignedRecord] = self._load_log()

    def _load_last(self) -> SignedRecord | None:
        raw = self._store.get(WAL, LAST_SIGNED)
        if raw is None:
            return None
        h, r, s, sign_bytes, sig = msgpack.unpackb(raw)
        return SignedRecord(h, r, Step(s), sign_bytes, sig)

    def _load_log(self) -> dict[tuple[int, int, int], SignedRecord]:
        out: dict[tuple[int, int, int], SignedRecord] = {}
        for key, raw in self._store.iterate(WAL, SIGN_LOG, SIGN_LOG[:-1] + b"0"):
            h, r, s = struct.unpack(">QIB", key[len(SIGN_LOG):])
            sign_bytes, sig, value_id, valid_round = msgpack.unpackb(raw)
            rec = SignedRecord(h, r, Step(s), sign_bytes, sig, value_id, valid_round)
            out[rec.hrs] = rec
        return out

    @property
    def last(self) -> SignedRecord | None:
        return self._last

    def records(self, height: int) -> list[SignedRecord]:
        """Everything signed at ``height`` (if not pruned), in (round, step) order."""
        with self._lock:
            return sorted((r for r in self._log.values() if r.height == height),
                          key=lambda r: r.hrs)

    def block(self, height: int, value_id: bytes) -> bytes | None:
        """The block stored with a signed proposal or non-nil precommit of ``height``."""
        return self._store.get(WAL, _block_key(height, value_id))

    def lock(self, height: int) -> tuple[int, bytes] | None:
        """(round, value id) of the highest-round non-nil precommit signed at ``height``."""
        locks = [(r.round, r.value_id) for r in self.records(height)
                 if r.step is Step.PRECOMMIT and r.value_id is not None]
        return max(locks) if locks else None

    def sign(self, height: int, round_: int, step: Step, sign_bytes: bytes,
             value_id: bytes | None = None, *, valid_round: int = -1,
             block: bytes | None = None) -> bytes:
        """Sign ``sign_bytes`` as this validator's (height, round, step) message.

        ``value_id`` (the value, None for nil) and ``valid_round`` (proposals) are logged so
        the message can be rebuilt after a restart; ``block`` (the value's wire encoding) is
        stored beside it, once per (height, value).
        """
        with self._lock:
            hrs = (height, round_, int(step))
            last = self._last
            same = self._log.get(hrs) or (last if last is not None and last.hrs == hrs
                                          else None)
            if same is not None:
                if sign_bytes == same.sign_bytes:
                    return same.signature
                raise DoubleSign(
                    f"refusing to sign a second, different {step.name} for height {height} "
                    f"round {round_}")
            if last is not None and hrs < last.hrs:
                raise Regression(
                    f"refusing to sign height {height} round {round_} {step.name}: already "
                    f"signed height {last.height} round {last.round} {last.step.name}")
            signature = self._sign(sign_bytes)
            rec = SignedRecord(height, round_, step, bytes(sign_bytes), bytes(signature),
                               None if value_id is None else bytes(value_id), valid_round)
            writes: dict[bytes, bytes | None] = {
                WAL + LAST_SIGNED: msgpack.packb(
                    [height, round_, int(step), rec.sign_bytes, rec.signature]),
                WAL + _log_key(height, round_, step): msgpack.packb(
                    [rec.sign_bytes, rec.signature, rec.value_id, valid_round]),
            }
            if block is not None and value_id is not None and self.block(
                    height, value_id) is None:
                writes[WAL + _block_key(height, value_id)] = bytes(block)
            self._store.commit(None, writes)  # one synced batch
            self._last = rec
            self._log[hrs] = rec
            return rec.signature

    def prune_writes(self, below_height: int) -> dict[bytes, bytes | None]:
        """Forget the log and blocks of heights below ``below_height`` (committed); returns
        the deletions, for the block's own commit batch (no extra synced write)."""
        with self._lock:
            stop = struct.pack(">Q", below_height)
            doomed = [WAL + k for prefix in (SIGN_LOG, SIGNED_BLOCK)
                      for k, _ in self._store.iterate(WAL, prefix, prefix + stop)]
            self._log = {k: r for k, r in self._log.items() if r.height >= below_height}
            return dict.fromkeys(doomed)

    def prune(self, below_height: int) -> None:
        """:meth:`prune_writes`, written at once."""
        doomed = self.prune_writes(below_height)
        if doomed:
            self._store.commit(None, doomed)
