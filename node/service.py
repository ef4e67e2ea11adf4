"""The node: storage, chain, mempool and the block producer, wired together.

Until BFT consensus lands the node is a single validator: it proposes, executes and
commits its own blocks. Block production runs in one thread; everything a user sees
(receipts, blocks, logs, subscriptions) is committed data.

Invariants:

* Every transaction enters through :meth:`Node.admit` (JSON-RPC, REST, gossip and the
  journal replay alike), which applies ``admission.check_transaction`` and the mempool's
  rules at the head block.
* A transaction hash returned to a user is journaled (``m`` prefix) before the call
  returns, so a crash never loses an accepted transaction; on restart it goes through
  :meth:`Node.admit` again and is dropped from the journal if it no longer passes.
* A receipt is visible only after its block's batch is synced to disk.
* No empty blocks while idle, except one per ``heartbeat_ms`` when that is set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI
from eth_typing import Address
from eth_utils import to_canonical_address

from yilian.crypto.suites import get_suite
from yilian.node.admission import (
    AccountView,
    Rejected,
    Standing,
    TxRules,
    check_transaction,
)
from yilian.node.chain import BlockEnv, BuiltBlock, ChainCore
from yilian.node.commit_waiters import CommitWaiters
from yilian.node.config import ConfigError, NodeConfig
from yilian.node.domain import Domain
from yilian.node.genesis import Genesis, load_genesis
from yilian.node.key_service import KeyService, load_key_service
from yilian.node.liveness import Liveness
from yilian.node.mempool import Mempool
from yilian.node.storage import MEMPOOL, Store

if TYPE_CHECKING:
    from yilian.node.consensus_driver import ConsensusDriver

log = logging.getLogger("yilian.node")


@dataclass(frozen=True)
class CommittedBlock:
    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]


Listener = Callable[[CommittedBlock], None]


class Node:
    def __init__(self, config: NodeConfig, home: Path) -> None:
        self.config = config
        self.home = home
        genesis_path = Path(config.genesis_file)
        self.genesis: Genesis = load_genesis(
            genesis_path if genesis_path.is_absolute() else home / genesis_path)
        data_dir = Path(config.data_dir)
        self.store = Store(data_dir if data_dir.is_absolute() else home / data_dir)
        self.core = ChainCore(self.store, self.genesis)
        self.proposer = bytes(to_canonical_address(config.proposer))
        self.mempool = Mempool(account=self.account, limits=config.mempool)
        self.rules = TxRules(chain_id=self.genesis.chain_id,
                             max_tx_bytes=config.mempool.max_tx_bytes,
                             max_tx_gas=self.genesis.params.max_tx_gas,
                             operators=self.genesis.authorised_senders)
        self._listeners: list[Listener] = []
        self.commit_waiters = CommitWaiters()
        self.liveness = Liveness(self)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = time.time()
        self.last_block_error: str | None = None
        self.consensus: ConsensusDriver | None = None
        if config.p2p_port:
            self.consensus = self._make_consensus()
        self.domain = Domain(self.core)
        self._digest = get_suite(self.genesis.suite).digest
        self._replay_journal()
        self.key_service: KeyService | None = load_key_service(self, self.domain)

    def _make_consensus(self) -> ConsensusDriver:
        from yilian.crypto.suites import get_suite, load_private_key
        from yilian.node.consensus_driver import ConsensusDriver
        from yilian.node.p2p.peers import PeerAddress

        if not self.genesis.validators:
            raise ConfigError("p2p_port is set but the genesis names no validators")
        if not self.config.node_key_file:
            raise ConfigError("consortium mode needs node_key_file (the node's private key)")
        suite = get_suite(self.genesis.suite)
        key_path = Path(self.config.node_key_file)
        private = load_private_key(key_path if key_path.is_absolute() else self.home / key_path,
                                   suite)
        if suite.public_key(private) not in self.genesis.member_keys:
            raise ConfigError("this node's key is not named in the genesis validators or "
                              "observers; use the key generated for it by `yilian network init`")
        peers = [PeerAddress(p.host, p.port, bytes.fromhex(p.node_key[2:]))
                 for p in self.config.peers]
        return ConsensusDriver(self, suite, private, validator=self.config.validator,
                               peers=peers, listen=(self.config.host, self.config.p2p_port))

    # -- state access for admission (the head view of ``admission.check_transaction``) ----
    def account(self, address: bytes) -> AccountView:
        head = self.core.head()
        state = self.core.reader().get_vm(head).state
        return AccountView(nonce=state.get_nonce(Address(address)),
                           balance=state.get_balance(Address(address)),
                           code=state.get_code(Address(address)))

    def standing(self, address: bytes) -> Standing | None:
        return self.domain.standing(address)

    def check_call(self, tx: SignedTransactionAPI) -> None:
        self.domain.check_admission(tx, self._digest)

    def may_act_suspended(self, tx: SignedTransactionAPI) -> bool:
        return self.domain.may_act_suspended(tx)

    def _replay_journal(self) -> None:
        """Re-admit the journal through :meth:`admit`, exactly like a new transaction."""
        kept = 0
        dropped: dict[str, int] = {}
        for key, raw in list(self.store.iterate(MEMPOOL)):
            try:
                self.admit(raw, journal=False)
                kept += 1
            except Rejected as exc:
                self.store.delete(MEMPOOL, key)
                dropped[exc.reason] = dropped.get(exc.reason, 0) + 1
        if kept or dropped:
            log.info("mempool journal: re-admitted %d, dropped %s", kept,
                     ", ".join(f"{n} ({why})" for why, n in sorted(dropped.items())) or "none")

    # -- submission ------------------------------------------------------------------------
    def admit(self, raw: bytes, *, journal: bool = True) -> bytes:
        """The one admission path: every rule of ``admission.check_transaction``, then the
        mempool's; journal the transaction (unless it is being replayed from the journal).
        Returns its hash; raises Rejected."""
        tx = check_transaction(raw, self.rules, self)
        tx_hash = bytes(tx.hash)
        if self.core.is_committed(tx_hash):
            raise Rejected("known", f"transaction 0x{tx_hash.hex()} is already committed")
        replaced = self.mempool.admit(tx, raw)
        if journal:
            self.store.put(MEMPOOL, tx_hash, raw)
        if replaced is not None:
            self.store.delete(MEMPOOL, replaced)
        return tx_hash

    def submit(self, raw: bytes, *, gossip: bool = True) -> bytes:
        """Admit a raw signed transaction (:meth:`admit`); return its hash. Raises Rejected.

        In a consortium the transaction then goes to the peers (``gossip``).
        """
        tx_hash = self.admit(raw)
        if gossip and self.consensus is not None:
            self.consensus.gossip_tx(raw)
        return tx_hash

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- block production ------------------------------------------------------------------
    def start(self) -> None:
        if self.consensus is not None:
            self.consensus.start()
            return
        self._thread = threading.Thread(target=self._run, name="block-producer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.mempool.has_ready.set()
        if self.consensus is not None:
            self.consensus.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.store.close()

    def _run(self) -> None:
        params = self.genesis.params
        interval = params.block_interval_ms / 1000
        heartbeat = params.heartbeat_ms / 1000
        last = time.monotonic()
        while not self._stop.is_set():
            wait = heartbeat - (time.monotonic() - last) if heartbeat else 1.0
            self.mempool.has_ready.wait(timeout=max(wait, 0.0))
            if self._stop.is_set():
                break
            pause = last + interval - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                break
            heartbeat_due = bool(heartbeat) and time.monotonic() - last >= heartbeat
            txs = self.mempool.select(params.max_tx_per_block)
            if not txs and not heartbeat_due:
                continue
            # Blocks start every `interval` at most: a block that took longer to build than
            # the interval is followed at once by the next one instead of an idle pause.
            last = time.monotonic()
            try:
                self.produce(txs, allow_empty=heartbeat_due)
            except Exception as exc:  # never let one bad block kill the producer
                self.last_block_error = repr(exc)
                log.exception("block production failed")
                self._stop.wait(interval)

    def build(self, txs: list[SignedTransactionAPI], proposer: bytes | None = None,
              budget_s: float | None = None, max_bytes: int | None = None) -> BuiltBlock:
        """Build a block on the committed head from ``txs``; forget txs that can never run."""
        head = self.core.head()
        env = BlockEnv(timestamp=max(int(time.time()), head.timestamp),
                       proposer=proposer or self.proposer)
        built = self.core.build(txs, env, budget_s=budget_s, max_bytes=max_bytes)
        dropped = [s.tx for s in built.skipped if not s.retry]
        for tx in dropped:
            self.store.delete(MEMPOOL, bytes(tx.hash))
        if dropped:
            for s in built.skipped:
                if not s.retry:
                    log.info("dropped 0x%s: %s", bytes(s.tx.hash).hex(), s.reason)
            self.mempool.committed((), dropped)
        return built

    def produce(self, txs: list[SignedTransactionAPI], *, allow_empty: bool = False
                ) -> CommittedBlock | None:
        """Single-validator mode: build, commit and announce one block from ``txs``."""
        built = self.build(txs)
        if not built.block.transactions and not allow_empty:
            built.overlay.discard()
            return None
        return self.commit_block(built)

    def commit_block(self, built: BuiltBlock,
                     extra: dict[bytes, bytes | None] | None = None) -> CommittedBlock:
        """Commit a built or imported block (one atomic batch with ``extra`` and the
        mempool-journal removals), update the mempool and notify subscribers."""
        journal: dict[bytes, bytes | None] = {MEMPOOL + bytes(tx.hash): None
                                              for tx in built.block.transactions}
        journal.update(extra or {})
        journal.update(self.domain.index_writes(built.block, built.receipts))
        self.core.commit(built, journal)
        removed = self.mempool.committed(built.block.transactions)
        for h in removed:
            if MEMPOOL + h not in journal:
                self.store.delete(MEMPOOL, h)
        return self._announce(built)

    async def wait_for_commit(self, tx_hash: bytes, timeout: float) -> bool:
        """True once ``tx_hash`` is in a committed block, False after ``timeout`` seconds.

        Holds no thread while it waits (an asyncio future resolved by ``_announce``)."""
        return await self.commit_waiters.wait(tx_hash, timeout, self.core.is_committed)

    def _announce(self, built: BuiltBlock) -> CommittedBlock:
        self.liveness.committed()
        self.commit_waiters.resolve(bytes(tx.hash) for tx in built.block.transactions)
        committed = CommittedBlock(built.block, built.receipts)
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:
                log.exception("block listener failed")
        return committed
