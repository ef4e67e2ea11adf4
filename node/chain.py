"""The chain core: build, import and commit blocks with py-evm over the node's LevelDB.

Invariants:

* A block is built (or imported) into a :class:`~yilian.node.storage.PendingWrites`
  overlay and lands on disk in one atomic batch by :meth:`ChainCore.commit`; readers
  never see a half-written block.
* Block building follows exactly the steps py-evm's ``import_block`` takes (system
  pre-processing, transactions, post-processing, finalisation), so a replica that
  re-executes a built block reaches the same state root.
* The environment (timestamp, proposer) is an explicit input; nothing here reads a clock.
* The base fee is zero and stays zero: a block never uses more than the gas target.
* Bounded work: a built block uses at most ``params.maxBlockGas`` gas and holds only
  transactions that pass ``admission.validate_transaction`` (so at most ``maxTxGas`` each);
  an imported block that breaks either is refused, its execution stopped at the cap.
* One transaction's failure is never the block's: whatever exception executing it raises,
  its state changes are reverted and it is left out (dropped with the reason, or kept for
  a later block when only the time budget ran out).
* :meth:`ChainCore.commit` is the only writer of blocks, so :meth:`ChainCore.head` reads
  the head from disk once and then keeps the header each commit lands.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import eth.db.trie
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    VirtualMachineAPI,
)
from eth.chains.base import Chain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import HeaderNotFound
from eth.vm.spoof import SpoofTransaction
from eth_hash.auto import keccak
from eth_typing import Address, BlockNumber
from eth_utils import ValidationError
from trie import HexaryTrie

from yilian.node import execution_limits
from yilian.node.admission import Rejected, validate_transaction
from yilian.node.build_budget import FinalisationEstimate, room_for_one_more
from yilian.node.execution_limits import Deadline, OutOfTime
from yilian.node.genesis import Genesis, YilianChainDB, YilianVM, chain_class
from yilian.node.head_state import HeadState, HeadStates
from yilian.node.storage import (
    GENESIS,
    INDEX,
    LOG_ADDRESS,
    META,
    TX_RECORD,
    PendingWrites,
    Store,
)
from yilian.node.tx_index import TxRecord, decode_record, encode_record

log = logging.getLogger("yilian.chain")

# Recently committed blocks kept decoded for readers: at most this many blocks and, since a
# block may hold thousands of transactions (a few KB each decoded), this many transactions.
RECENT_BLOCKS = 32
RECENT_BLOCK_TXS = 4096


class ChainError(Exception):
    """The chain cannot do what was asked; the message says why."""


class GenesisMismatch(ChainError):
    """The data directory holds a chain started from a different genesis."""


@dataclass(frozen=True)
class BlockEnv:
    """What the proposer fixes before executing a block."""

    timestamp: int
    proposer: bytes  # 20-byte address, goes into the header's coinbase


@dataclass(frozen=True)
class Skipped:
    """A transaction the builder left out of a block, and why."""

    tx: SignedTransactionAPI
    reason: str
    retry: bool  # True: it may fit a later block (gas target reached); False: drop it


@dataclass(frozen=True)
class BuiltBlock:
    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    skipped: tuple[Skipped, ...]
    overlay: PendingWrites


class _Failed(Exception):
    """Executing one transaction raised ``cause``; ``snapshot`` undoes what it changed."""

    def __init__(self, cause: Exception, snapshot: Any) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.snapshot = snapshot


def _apply(vm: VirtualMachineAPI, header: BlockHeaderAPI, tx: SignedTransactionAPI,
           deadline: float | None) -> tuple[ReceiptAPI, Any]:
    """py-evm's ``VM.apply_transaction``, with a state snapshot taken *after* its
    ``lock_changes`` (which drops earlier checkpoints), so that any exception can be undone:
    raises :class:`_Failed` carrying the exception and the snapshot to revert to."""
    vm.state.lock_changes()
    snapshot = vm.state.snapshot()
    try:
        vm.validate_transaction_against_header(header, tx)
        with execution_limits.deadline(deadline):
            computation = vm.state.apply_transaction(tx)
        receipt = vm.make_receipt(header, tx, computation, vm.state)
        vm.validate_receipt(receipt)
    except Exception as exc:
        raise _Failed(exc, snapshot) from exc
    return receipt, snapshot


def _be8(n: int) -> bytes:
    return struct.pack(">Q", n)


def release_evm_caches() -> None:
    """Empty py-evm's memo caches that only serve the block being built or imported.

    They are ``functools.lru_cache`` s shared by the whole process, and two of them are keyed
    by an instance that is never used again once its block is committed or its request
    answered (a block's pruning ``HexaryTrie``, a request's ``ChainDB``): up to 4,096 trie
    nodes and 32 blocks' decoded transactions stay reachable, with the tries, journals and
    databases behind them. The third holds the encoded transactions, receipts and trie nodes
    of the last 128 blocks' roots (a 2,000-transaction block is megabytes). Emptied after
    each commit, they hold at most one block interval's worth.
    """
    HexaryTrie._cached_create_node_to_db_mapping.cache_clear()
    ChainDB._get_block_transactions.cache_clear()
    ChainDB._get_block_withdrawals.cache_clear()
    eth.db.trie._make_trie_root_and_nodes.cache_clear()


class ChainCore:
    """Owns the EVM chain in a :class:`Store`; one writer (the block producer), many readers."""

    def __init__(self, store: Store, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis
        self.chain_class = chain_class(genesis.chain_id)
        self.vm_class = YilianVM
        self._recent_blocks: dict[bytes, BlockAPI] = {}
        self._recent_txs = 0  # transactions in _recent_blocks
        self._head: BlockHeaderAPI | None = None  # set by commit, the only writer
        self._head_states = HeadStates(self)
        self._finalise = FinalisationEstimate()  # learnt from the blocks built here
        self._ensure_genesis()

    # -- setup ---------------------------------------------------------------------------
    def _ensure_genesis(self) -> None:
        recorded = self.store.get(META, GENESIS)
        if recorded is not None:
            if recorded.decode() != self.genesis.digest:
                raise GenesisMismatch(
                    "this data directory was initialised from a different genesis "
                    f"(recorded {recorded.decode()[:16]}..., given {self.genesis.digest[:16]}...). "
                    "Use the genesis it was created with, or start from an empty data directory."
                )
            return
        db, overlay = self.store.pending_evm_db()
        self.chain_class.from_genesis(db, self.genesis.genesis_params(),
                                      self.genesis.genesis_state())  # type: ignore[arg-type]
        self.store.commit(overlay, {META + GENESIS: self.genesis.digest.encode()})

    # -- reading committed data ------------------------------------------------------------
    def reader(self) -> Chain:
        """A py-evm chain over committed data only. Cheap; make one per request."""
        return self.chain_class(self.store.committed_evm_db())

    @property
    def chaindb(self) -> ChainDB:
        return YilianChainDB(self.store.committed_evm_db())

    def head(self) -> BlockHeaderAPI:
        """The canonical head; kept in memory after the first read (only :meth:`commit`
        moves it)."""
        head = self._head
        if head is None:
            head = self._head = self.chaindb.get_canonical_head()
        return head

    def state_db(self) -> AtomicDB:
        """Committed state (trie nodes and code) for :mod:`yilian.node.head_state`."""
        return self.store.committed_evm_db()

    def head_state(self) -> HeadState:
        """The state after the head block, read without a VM (one per head, shared)."""
        return self._head_states.current()

    def genesis_hash(self) -> bytes:
        return bytes(self.chaindb.get_canonical_block_hash(BlockNumber(0)))

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        try:
            return self.chaindb.get_canonical_block_header_by_number(number)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        try:
            header = self.chaindb.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None
        return header

    def block_by_header(self, header: BlockHeaderAPI) -> BlockAPI:
        cached = self._recent_blocks.get(header.hash)
        if cached is not None:
            return cached
        return self.reader().get_block_by_header(header)

    def receipts(self, block: BlockAPI) -> tuple[ReceiptAPI, ...]:
        return tuple(block.get_receipts(self.chaindb))

    def tx_record(self, tx_hash: bytes) -> TxRecord | None:
        """The committed transaction with this hash, its block and receipt; None if unknown."""
        raw = self.store.get(INDEX, TX_RECORD + tx_hash)
        if raw is None:
            return None
        return decode_record(raw, self.vm_class.get_transaction_builder(),
                             self.vm_class.get_receipt_builder())

    def is_committed(self, tx_hash: bytes) -> bool:
        return self.store.get(INDEX, TX_RECORD + tx_hash) is not None

    def blocks_with_logs_from(self, address: bytes, first: int, last: int) -> Iterator[int]:
        """Block numbers in [first, last] whose receipts hold a log emitted by ``address``."""
        start = LOG_ADDRESS + address + _be8(first)
        stop = LOG_ADDRESS + address + _be8(last + 1)
        for key, _ in self.store.iterate(INDEX, start, stop):
            yield struct.unpack(">Q", key[-8:])[0]

    # -- building --------------------------------------------------------------------------
    def build(self, txs: Sequence[SignedTransactionAPI], env: BlockEnv,
              budget_s: float | None = None, max_bytes: int | None = None) -> BuiltBlock:
        """Execute ``txs`` in order on top of the committed head into a new block.

        Each transaction is checked with ``validate_transaction`` first, then executed; any
        exception it raises (a failed validation such as a bad nonce, or an error inside
        py-evm) reverts it and leaves it out, reported in ``skipped`` with ``retry=False``.
        The block uses at most ``maxBlockGas``. With a time ``budget_s`` (a BFT proposer
        must propose before the others' propose timeout) no transaction starts once the
        time left would not cover finalising the block (:mod:`yilian.node.build_budget`),
        and execution stops *inside* the transaction running when the budget passes: that
        transaction is reverted and, with the rest, waits for a later block, unless it was
        the block's first (it alone exceeds the budget: dropped). With ``max_bytes``,
        transactions that would take the block's encoded transactions past it wait too
        (peers refuse blocks over ``wire.MAX_BLOCK_BYTES``).
        """
        db, overlay = self.store.pending_evm_db()
        chain = self.chain_class(db)
        parent = chain.get_canonical_head()
        if env.timestamp < parent.timestamp:
            raise ChainError(
                f"block timestamp {env.timestamp} is before its parent's {parent.timestamp}"
            )
        header = chain.create_header_from_parent(
            parent,
            timestamp=env.timestamp,
            coinbase=env.proposer,
            gas_limit=parent.gas_limit,
            # Not randomness: a deterministic value every replica can recompute.
            mix_hash=keccak(parent.hash),
        )
        vm = chain.get_vm(header)
        vm.block_preprocessing(vm.get_block())  # type: ignore[attr-defined]
        current = vm.get_header()
        params = self.genesis.params
        receipts: list[ReceiptAPI] = []
        included: list[SignedTransactionAPI] = []
        skipped: list[Skipped] = []
        deadline = time.monotonic() + budget_s if budget_s is not None else None
        out_of_time = False
        size = 0
        for tx in txs:
            if out_of_time or not room_for_one_more(time.monotonic(), deadline,
                                                    len(included), self._finalise):
                out_of_time = True
                skipped.append(Skipped(tx, "block time budget reached", retry=True))
                continue
            tx_size = len(tx.encode())
            if max_bytes is not None and size + tx_size > max_bytes:
                skipped.append(Skipped(tx, "block size budget reached", retry=True))
                continue
            if current.gas_used + tx.gas > params.max_block_gas:
                skipped.append(Skipped(tx, "block gas cap reached", retry=True))
                continue
            try:
                validate_transaction(tx, params.max_tx_gas)
            except Rejected as exc:
                skipped.append(Skipped(tx, exc.message, retry=False))
                continue
            try:
                receipt, _ = _apply(vm, current, tx, deadline)
            except _Failed as failed:
                vm.state.revert(failed.snapshot)
                cause = failed.cause
            else:
                current = vm.add_receipt_to_header(current, receipt)
                current = vm.increment_blob_gas_used(current, tx)
                receipts.append(receipt)
                included.append(tx)
                size += tx_size
                continue
            if isinstance(cause, OutOfTime):
                out_of_time = True
                alone = not included
                skipped.append(Skipped(
                    tx, "it alone runs longer than the block time budget" if alone
                    else "block time budget reached", retry=not alone))
            elif isinstance(cause, ValidationError):  # bad nonce, balance...
                skipped.append(Skipped(tx, str(cause), retry=False))
            else:  # an error inside py-evm: the transaction's, not the block's
                log.warning("transaction 0x%s failed to execute (%s: %s); leaving it out",
                            bytes(tx.hash).hex(), type(cause).__name__, cause)
                skipped.append(Skipped(tx, f"execution failed: {type(cause).__name__}: "
                                       f"{cause}", retry=False))
        finalising = time.monotonic()
        filled = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), current, included, receipts
        )
        processed = vm.block_postprocessing(filled)  # type: ignore[attr-defined]
        block = vm.mine_block(processed).block
        chain.chaindb.persist_block(block)
        self._finalise.learn(time.monotonic() - finalising, len(included))
        return BuiltBlock(block, tuple(receipts), tuple(skipped), overlay)

    def check_proposal(self, block: BlockAPI) -> None:
        """The bounds a block must meet before it is executed (its cost is bounded by them):
        at most ``maxTxPerBlock`` transactions, each valid on its own and within
        ``maxTxGas``, and a header claiming at most ``maxBlockGas``. Raises ChainError."""
        params = self.genesis.params
        if len(block.transactions) > params.max_tx_per_block:
            raise ChainError(f"block #{block.number} holds {len(block.transactions)} "
                             f"transactions; at most {params.max_tx_per_block} are allowed")
        if block.header.gas_used > params.max_block_gas:
            raise ChainError(f"block #{block.number} uses {block.header.gas_used} gas; the "
                             f"per-block cap is {params.max_block_gas}")
        for index, tx in enumerate(block.transactions):
            try:
                validate_transaction(tx, params.max_tx_gas)
            except Rejected as exc:
                raise ChainError(f"block #{block.number} transaction {index} is invalid: "
                                 f"{exc.message}") from None

    def import_block(self, block: BlockAPI) -> BuiltBlock:
        """Re-execute a block built elsewhere on top of the committed head (not committed yet).

        Raises ChainError if it breaks :meth:`check_proposal`'s bounds (checked before
        executing anything), if its execution passes ``maxBlockGas`` (stopped there), if
        executing it raises anything, or if it does not reproduce the same header (state
        root included).
        """
        self.check_proposal(block)
        db, overlay = self.store.pending_evm_db()
        chain = self.chain_class(db)
        try:
            with execution_limits.block_gas_cap(self.genesis.params.max_block_gas):
                result = chain.import_block(block)
        except Exception as exc:  # whatever a proposed block makes py-evm raise: it's invalid
            overlay.discard()
            raise ChainError(f"block #{block.number} is invalid: {type(exc).__name__}: "
                             f"{exc}") from exc
        imported = result.imported_block
        receipts = tuple(imported.get_receipts(chain.chaindb))
        return BuiltBlock(imported, receipts, (), overlay)

    def commit(self, built: BuiltBlock,
               extra: dict[bytes, bytes | None] | None = None) -> None:
        """Land a built block, its indexes and ``extra`` writes in one atomic batch."""
        writes: dict[bytes, bytes | None] = dict(extra or {})
        block = built.block
        number = _be8(block.number)
        gas_before = log_start = 0
        for index, (tx, receipt) in enumerate(zip(block.transactions, built.receipts,
                                                  strict=True)):
            writes[INDEX + TX_RECORD + bytes(tx.hash)] = encode_record(
                block.number, block.hash, index, tx, receipt, gas_before, log_start)
            gas_before = receipt.gas_used
            log_start += len(receipt.logs)
            for log in receipt.logs:
                writes[INDEX + LOG_ADDRESS + bytes(log.address) + number] = b""
        self.store.commit(built.overlay, writes)
        self._head = block.header
        release_evm_caches()
        # Committed blocks are immutable: serve recent ones without re-reading every
        # transaction from the trie (eth_getBlockByNumber on a 2000-tx block takes ~0.2 s).
        self._recent_blocks[block.hash] = block
        self._recent_txs += len(block.transactions)
        while len(self._recent_blocks) > 1 and (len(self._recent_blocks) > RECENT_BLOCKS
                                                or self._recent_txs > RECENT_BLOCK_TXS):
            oldest = self._recent_blocks.pop(next(iter(self._recent_blocks)))
            self._recent_txs -= len(oldest.transactions)

    # -- execution without committing ----------------------------------------------------
    def call_tx(self, sender: bytes, to: bytes, data: bytes, at: BlockHeaderAPI, gas: int, *,
                value: int = 0, nonce: int | None = None) -> SignedTransactionAPI:
        """An unsigned transaction from ``sender`` for :meth:`call` / :meth:`estimate_gas`.

        Its nonce is ``sender``'s next nonce after block ``at`` unless ``nonce`` is given;
        ``to`` empty creates a contract. The gas price is 0 (the chain charges no fees)."""
        if nonce is None:
            nonce = self.reader().get_vm(at).state.get_nonce(Address(sender))
        unsigned = self.vm_class.create_unsigned_transaction(
            nonce=nonce, gas_price=0, gas=gas, to=Address(to), value=value, data=data)
        return SpoofTransaction(unsigned, from_=Address(sender))  # type: ignore[return-value]

    def call(self, tx: SignedTransactionAPI, at: BlockHeaderAPI,
             gas_cap: int, deadline: Deadline | None = None) -> ComputationAPI:
        """Run ``tx`` on the state after block ``at`` and return the computation (no writes).

        With a ``deadline``, execution raises OutOfTime once it passes."""
        chain = self.reader()
        vm = chain.get_vm(at.copy(gas_limit=max(gas_cap, at.gas_limit)))
        with vm.in_costless_state() as state, execution_limits.deadline(deadline):
            return state.costless_execute_transaction(tx)

    def estimate_gas(self, tx: SignedTransactionAPI, at: BlockHeaderAPI, gas_cap: int,
                     deadline: Deadline | None = None) -> int:
        chain = self.reader()
        with (chain.get_vm(at.copy(gas_limit=gas_cap)).in_costless_state() as state,
              execution_limits.deadline(deadline)):
            return chain.gas_estimator(state, tx)

