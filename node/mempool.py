"""The mempool: admitted transactions waiting for a block.

Admission rules (each rejection carries a reason a user can act on, see :class:`Rejected`):

* encoding: at most ``max_tx_bytes``; decodes as a legacy, EIP-2930, EIP-1559 or
  EIP-7702 transaction (blob transactions are refused: this chain carries no blobs);
* signature: valid secp256k1, chain id equal to the network's (legacy transactions must
  be EIP-155 protected);
* sender: in the genesis' authorised senders when that list is non-empty;
* nonce: not below the sender's next nonce, at most ``max_nonce_gap`` ahead of it;
* gas: at least the intrinsic gas, at most the block gas target;
* funds: balance covers ``value + gas * maxFeePerGas`` (zero fees: only the value);
* a transaction with the same sender and nonce replaces the pending one only if neither
  fee cap falls (fees are zero here, so the newer one wins);
* bounds: ``max_size`` transactions in all, ``max_per_sender`` per sender.

Selection is per-sender nonce order, senders interleaved by arrival. Thread-safe.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import rlp
from eth.abc import SignedTransactionAPI
from eth_utils import ValidationError, to_checksum_address

from yilian.node.genesis import YilianVM


@dataclass(frozen=True)
class MempoolLimits:
    max_size: int = 50_000
    max_per_sender: int = 10_000
    max_nonce_gap: int = 1_024
    max_tx_bytes: int = 128 * 1024


class Rejected(Exception):
    """A transaction was not admitted. ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class AccountView:
    nonce: int
    balance: int


@dataclass
class _Entry:
    tx: SignedTransactionAPI
    raw: bytes
    seq: int


_SECP256K1_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2


def decode_transaction(raw: bytes, *, chain_id: int, max_bytes: int) -> SignedTransactionAPI:
    """Decode and authenticate a raw transaction; raise :class:`Rejected` otherwise."""
    if len(raw) > max_bytes:
        raise Rejected("oversized", f"transaction is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw:
        raise Rejected("invalid_encoding", "empty transaction")
    if raw[0] == 3:
        raise Rejected("unsupported_type", "blob (type 3) transactions are not supported here")
    try:
        tx = YilianVM.get_transaction_builder().decode(raw)
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError,
            TypeError, IndexError) as exc:
        raise Rejected("invalid_encoding",
                       f"not a valid signed transaction encoding: {exc}") from exc
    except Exception as exc:  # py-evm raises assorted errors on garbage input
        raise Rejected("invalid_encoding",
                       f"not a valid signed transaction encoding: {exc}") from exc
    tx_chain_id = tx.chain_id
    if tx_chain_id is None:
        raise Rejected("unprotected",
                       "legacy transaction without EIP-155 replay protection; sign with "
                       f"chain id {chain_id}")
    if tx_chain_id != chain_id:
        raise Rejected("wrong_chain",
                       f"transaction is for chain id {tx_chain_id}; this network is {chain_id}")
    if not 0 < tx.s <= _SECP256K1_HALF_N:
        # EIP-2, which py-evm enforces for legacy transactions only: without it every
        # signed transaction has a second valid encoding with another hash.
        raise Rejected("invalid_signature",
                       "invalid transaction signature: s must be in the lower half of the "
                       "curve order (EIP-2)")
    try:
        # Recovering the sender is the signature check: py-evm's check_signature_validity()
        # would recover the same public key a second time and then verify the signature
        # against it, which cannot fail once recovery succeeded.
        _ = tx.sender
    except Exception as exc:
        raise Rejected("invalid_signature", f"invalid transaction signature: {exc}") from exc
    try:
        tx.validate()
    except ValidationError as exc:
        raise Rejected("invalid_transaction", f"invalid transaction: {exc}") from exc
    return tx


def _fee_cap(tx: SignedTransactionAPI) -> tuple[int, int]:
    return int(tx.max_fee_per_gas), int(tx.max_priority_fee_per_gas)


class Mempool:
    def __init__(self, *, chain_id: int, gas_target: int, authorised: frozenset[bytes],
                 account: Callable[[bytes], AccountView], limits: MempoolLimits) -> None:
        self.chain_id = chain_id
        self.gas_target = gas_target
        self.authorised = authorised
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

    def add(self, raw: bytes) -> SignedTransactionAPI:
        """Admit a raw transaction or raise :class:`Rejected`. Returns the decoded tx."""
        tx = decode_transaction(raw, chain_id=self.chain_id, max_bytes=self.limits.max_tx_bytes)
        self.admit(tx, raw)
        return tx

    def admit(self, tx: SignedTransactionAPI, raw: bytes) -> bytes | None:
        """Admit a decoded transaction; return the hash of the one it replaced, if any."""
        sender = bytes(tx.sender)
        def who() -> str:  # only for error messages: checksumming costs a keccak
            return to_checksum_address(sender)

        if self.authorised and sender not in self.authorised:
            raise Rejected("unauthorised",
                           f"sender {who()} is not a registered account of this network; ask the "
                           "consortium admin to register it")
        if tx.gas < tx.intrinsic_gas:
            raise Rejected("intrinsic_gas",
                           f"gas limit {tx.gas} is below the intrinsic gas {tx.intrinsic_gas}")
        if tx.gas > self.gas_target:
            raise Rejected("gas_limit",
                           f"gas limit {tx.gas} exceeds the per-block maximum {self.gas_target}")
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
            cost = tx.value + tx.gas * max_fee
            if cost:
                balance = self._account(sender).balance
                if cost > balance:
                    raise Rejected("insufficient_funds",
                                   f"insufficient funds: {who()} has {balance} wei, the "
                                   f"transaction needs up to {cost}")
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
