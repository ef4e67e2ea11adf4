"""The mempool: admitted transactions waiting for a block.

Every transaction reaches it through ``Ledger.admit`` after :mod:`yilian.node.admission`'s
``check_transaction`` (encoding, signature, gas, sender, domain and account rules). The
pool then applies its own rules, under its lock (each rejection a :class:`Rejected`):

* not already pending;
* nonce: not below the sender's next nonce, at most ``max_nonce_gap`` ahead of it;
* a transaction with the same sender and nonce replaces the pending one only if neither
  fee cap falls (fees are zero here, so the newer one wins);
* bounds: ``max_size`` transactions in all, ``max_per_sender`` per sender.

Selection is per-sender nonce order, senders interleaved by arrival. Thread-safe.

Invariant: the pool never holds a transaction whose nonce is below its sender's committed
nonce (``committed`` prunes them as blocks land).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_utils import to_checksum_address

from yilian.node.admission import AccountView, Rejected, decode_transaction

__all__ = ["AccountView", "Mempool", "MempoolLimits", "Rejected", "decode_transaction"]


@dataclass(frozen=True)
class MempoolLimits:
    max_size: int = 50_000
    max_per_sender: int = 10_000
    max_nonce_gap: int = 1_024
    max_tx_bytes: int = 128 * 1024


@dataclass
class _Entry:
    tx: SignedTransactionAPI
    raw: bytes
    seq: int


def _fee_cap(tx: SignedTransactionAPI) -> tuple[int, int]:
    return int(tx.max_fee_per_gas), int(tx.max_priority_fee_per_gas)


class Mempool:
    def __init__(self, *, account: Callable[[bytes], AccountView],
                 limits: MempoolLimits) -> None:
        self.limits = limits
        self._account = account
        self._lock = threading.Lock()
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._by_hash: dict[bytes, tuple[bytes, int]] = {}
        # next nonce per sender as of the last committed block (cache over ``account``)
        self._next_nonce: dict[bytes, int] = {}
        self._seq = itertools.count()
        self.has_ready = threading.Event()

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        with self._lock:
            loc = self._by_hash.get(tx_hash)
            if loc is None:
                return None
            return self._by_sender[loc[0]][loc[1]].tx

    def pending_nonce(self, sender: bytes) -> int:
        """The nonce a new transaction from ``sender`` should use ("pending" block tag).

        Answers for any address (``eth_getTransactionCount``), so an address with nothing
        pending is looked up without being cached: queries must not grow the cache.
        """
        with self._lock:
            queued = self._by_sender.get(sender, {})
            cached = self._next_nonce.get(sender)
            nonce = cached if cached is not None else self._account(sender).nonce
            while nonce in queued:
                nonce += 1
            return nonce

    def _committed_nonce(self, sender: bytes) -> int:
        nonce = self._next_nonce.get(sender)
        if nonce is None:
            nonce = self._account(sender).nonce
            self._next_nonce[sender] = nonce
        return nonce

    def admit(self, tx: SignedTransactionAPI, raw: bytes) -> bytes | None:
        """Apply the pool's rules to a transaction ``check_transaction`` passed and add it;
        return the hash of the one it replaced, if any."""
        sender = bytes(tx.sender)
        def who() -> str:  # only for error messages: checksumming costs a keccak
            return to_checksum_address(sender)

        tx_hash = bytes(tx.hash)
        with self._lock:
            if tx_hash in self._by_hash:
                raise Rejected("known", f"transaction 0x{tx_hash.hex()} is already pending")
            next_nonce = self._committed_nonce(sender)
            if tx.nonce < next_nonce:
                raise Rejected("nonce_too_low",
                               f"nonce too low: {who()} has used nonces up to {next_nonce - 1}; "
                               f"the next nonce is {next_nonce}")
            if tx.nonce > next_nonce + self.limits.max_nonce_gap:
                raise Rejected("nonce_too_high",
                               f"nonce {tx.nonce} is too far ahead of {who()}'s next nonce "
                               f"{next_nonce} (at most {self.limits.max_nonce_gap} ahead)")
            max_fee, max_tip = _fee_cap(tx)
            queued = self._by_sender.setdefault(sender, {})
            old = queued.get(tx.nonce)
            if old is not None:
                old_fee, old_tip = _fee_cap(old.tx)
                if max_fee < old_fee or max_tip < old_tip:
                    raise Rejected("underpriced_replacement",
                                   "replacement transaction underpriced: its fee caps must not "
                                   "be lower than the pending one's")
                old_hash = bytes(old.tx.hash)
                del self._by_hash[old_hash]
                replaced: bytes | None = old_hash
            else:
                replaced = None
                if len(self._by_hash) >= self.limits.max_size:
                    raise Rejected("mempool_full",
                                   f"the mempool is full ({self.limits.max_size} transactions); "
                                   "retry after a few blocks")
                if len(queued) >= self.limits.max_per_sender:
                    raise Rejected("sender_limit",
                                   f"{who()} already has {len(queued)} pending transactions "
                                   f"(limit {self.limits.max_per_sender}); wait for some to commit")
            queued[tx.nonce] = _Entry(tx, raw, next(self._seq))
            self._by_hash[tx_hash] = (sender, tx.nonce)
            if tx.nonce == next_nonce or (next_nonce in queued):
                self.has_ready.set()
            return replaced

    def pending_raw(self) -> list[bytes]:
        """Raw encodings of every pending transaction, oldest first (for a new peer)."""
        with self._lock:
            entries = [e for queued in self._by_sender.values() for e in queued.values()]
        entries.sort(key=lambda e: e.seq)
        return [e.raw for e in entries]

    def select(self, max_count: int) -> list[SignedTransactionAPI]:
        """Executable transactions: each sender's consecutive nonces from its next nonce,
        senders interleaved by the arrival of their next transaction."""
        with self._lock:
            heap: list[tuple[int, bytes, int]] = []
            for sender, queued in self._by_sender.items():
                nonce = self._committed_nonce(sender)
                entry = queued.get(nonce)
                if entry is not None:
                    heap.append((entry.seq, sender, nonce))
            heapq.heapify(heap)
            out: list[SignedTransactionAPI] = []
            while heap and len(out) < max_count:
                _, sender, nonce = heapq.heappop(heap)
                queued = self._by_sender[sender]
                out.append(queued[nonce].tx)
                nxt = queued.get(nonce + 1)
                if nxt is not None:
                    heapq.heappush(heap, (nxt.seq, sender, nonce + 1))
            if not out:
                self.has_ready.clear()
            return out

    def committed(self, txs: Iterable[SignedTransactionAPI],
                  dropped: Iterable[SignedTransactionAPI] = ()) -> list[bytes]:
        """Forget transactions a committed block included, and ones that can never execute.

        Returns the hashes removed (for the journal).
        """
        removed: list[bytes] = []
        with self._lock:
            touched: set[bytes] = set()
            for tx in txs:
                sender = bytes(tx.sender)
                touched.add(sender)
                self._next_nonce[sender] = max(self._next_nonce.get(sender, 0), tx.nonce + 1)
            for tx in dropped:
                h = bytes(tx.hash)
                loc = self._by_hash.pop(h, None)
                if loc is not None:
                    del self._by_sender[loc[0]][loc[1]]
                    removed.append(h)
                    touched.add(loc[0])
            for sender in touched:
                queued = self._by_sender.get(sender)
                if queued is None:
                    continue
                floor = self._next_nonce.get(sender, 0)
                for nonce in [n for n in queued if n < floor]:
                    h = bytes(queued.pop(nonce).tx.hash)
                    self._by_hash.pop(h, None)
                    removed.append(h)
                if not queued:
                    del self._by_sender[sender]
                # Forget cached nonces of idle senders so the cache stays bounded.
                if sender not in self._by_sender and len(self._next_nonce) > self.limits.max_size:
                    self._next_nonce.pop(sender, None)
            ready = any(self._next_nonce.get(s) in q for s, q in self._by_sender.items())
            if ready:
                self.has_ready.set()
            else:
                self.has_ready.clear()
        return removed
