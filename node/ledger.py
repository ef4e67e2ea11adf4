"""The ledger: the one place that admits transactions and commits blocks.

It owns the mempool and its journal, builds blocks on the committed head, commits built or
imported blocks, resolves commit waiters and announces committed blocks to subscribers. It
also answers the reads that run against committed state for the API: EIP-1186 proofs
(:mod:`yilian.node.proofs`) and calls as an account (``eth_call``, ``eth_estimateGas``,
revert reasons), which never write.
Who decides *which* block to commit (the single-validator producer in
:mod:`yilian.node.producer`, or the consensus driver) is not its concern: they reach it
through :class:`yilian.node.interfaces.LedgerAPI`. It knows no consensus driver; gossip of
admitted transactions is an admission listener wired by the composition root.

Invariants:

* Every transaction enters through :meth:`Ledger.admit` (JSON-RPC, REST, gossip and the
  journal replay alike), which applies ``admission.check_transaction`` and the mempool's
  rules at the head block.
* A transaction hash returned to a user is journaled (``m`` prefix) before the call
  returns, so a crash never loses an accepted transaction; on restart it goes through
  :meth:`Ledger.admit` again and is dropped from the journal if it no longer passes.
* A receipt is visible only after its block's batch is synced to disk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI

from yilian.crypto.suites import get_suite
from yilian.node.admission import (
    AccountView,
    Rejected,
    Standing,
    TxRules,
    check_transaction,
    decode,
)
from yilian.node.chain import BlockEnv, BuiltBlock, ChainCore
from yilian.node.commit_waiters import CommitWaiters
from yilian.node.execution_limits import Deadline
from yilian.node.genesis import Genesis
from yilian.node.interfaces import AdmissionListener, CommittedBlock, DomainRules, Listener
from yilian.node.mempool import Mempool, MempoolLimits
from yilian.node.proofs import AccountProof, account_proof
from yilian.node.storage import MEMPOOL, Store

log = logging.getLogger("yilian.node")


class Ledger:
    def __init__(self, store: Store, core: ChainCore, genesis: Genesis, domain: DomainRules,
                 limits: MempoolLimits, proposer: bytes) -> None:
        self.store = store
        self.core = core
        self.genesis = genesis
        self.domain = domain
        self.proposer = proposer
        self.mempool = Mempool(account=self.account, limits=limits)
        self.rules = TxRules(chain_id=genesis.chain_id,
                             max_tx_bytes=limits.max_tx_bytes,
                             max_tx_gas=genesis.params.max_tx_gas,
                             operators=genesis.authorised_senders)
        self.commit_waiters = CommitWaiters()
        self._listeners: list[Listener] = []
        self._admission_listeners: list[AdmissionListener] = []
        self._digest = get_suite(genesis.suite).digest

    # -- state access for admission (the head view of ``admission.check_transaction``) ----
    def account(self, address: bytes) -> AccountView:
        return self.core.head_state().account(address)

    def standing(self, address: bytes) -> Standing | None:
        return self.domain.standing(address)

    def check_call(self, tx: SignedTransactionAPI) -> None:
        self.domain.check_admission(tx, self._digest)

    def may_act_suspended(self, tx: SignedTransactionAPI) -> bool:
        return self.domain.may_act_suspended(tx)

    def replay_journal(self) -> None:
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
    def decode(self, raw: bytes) -> SignedTransactionAPI:
        """``raw`` decoded under this chain's admission rule 1 (Rejected if it cannot be)."""
        return decode(raw, self.rules)

    def admit(self, raw: bytes, *, journal: bool = True,
              decoded: SignedTransactionAPI | None = None) -> bytes:
        """The one admission path: every rule of ``admission.check_transaction``, then the
        mempool's; journal the transaction (unless it is being replayed from the journal).
        ``decoded`` is ``raw`` as :meth:`decode` returned it, if the caller has it.
        Returns its hash; raises Rejected."""
        tx = check_transaction(raw, self.rules, self, decoded)
        tx_hash = bytes(tx.hash)
        if self.core.is_committed(tx_hash):
            raise Rejected("known", f"transaction 0x{tx_hash.hex()} is already committed")
        replaced = self.mempool.admit(tx, raw)
        if journal:
            self.store.put(MEMPOOL, tx_hash, raw)
        if replaced is not None:
            self.store.delete(MEMPOOL, replaced)
        return tx_hash

    def submit(self, raw: bytes, *, gossip: bool = True,
               decoded: SignedTransactionAPI | None = None) -> bytes:
        """Admit a raw signed transaction (:meth:`admit`); return its hash. Raises Rejected.

        With ``gossip`` the admission listeners (in a consortium: the peers) get it next.
        """
        tx_hash = self.admit(raw, decoded=decoded)
        if gossip:
            for listener in self._admission_listeners:
                listener(raw)
        return tx_hash

    def on_admitted(self, listener: AdmissionListener) -> None:
        self._admission_listeners.append(listener)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- blocks ----------------------------------------------------------------------------
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

    # -- reads -----------------------------------------------------------------------------
    def proof(self, address: bytes, slots: Sequence[int], at: BlockHeaderAPI) -> AccountProof:
        """The EIP-1186 proof of ``address`` and its storage ``slots`` after block ``at``."""
        return account_proof(self.store.committed_evm_db(), at.state_root, address, slots)

    def call_as(self, sender: bytes, to: bytes, data: bytes, at: BlockHeaderAPI, gas: int, *,
                value: int = 0, deadline: Deadline | None = None) -> ComputationAPI:
        """Run a call from ``sender`` (no signature needed) with ``gas`` on the state after
        block ``at``; nothing is written. ``to`` empty creates a contract. Past ``deadline``
        execution raises OutOfTime."""
        tx = self.core.call_tx(sender, to, data, at, gas, value=value)
        return self.core.call(tx, at, gas, deadline)

    def estimate_gas_as(self, sender: bytes, to: bytes, data: bytes, at: BlockHeaderAPI,
                        gas_cap: int, *, value: int = 0,
                        deadline: Deadline | None = None) -> int:
        """The least gas (at most ``gas_cap``) with which the call of :meth:`call_as` does
        not run out of gas; OutOfTime past ``deadline``."""
        tx = self.core.call_tx(sender, to, data, at, gas_cap, value=value)
        return self.core.estimate_gas(tx, at, gas_cap, deadline)

    def _announce(self, built: BuiltBlock) -> CommittedBlock:
        self.commit_waiters.resolve(bytes(tx.hash) for tx in built.block.transactions)
        committed = CommittedBlock(built.block, built.receipts)
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:
                log.exception("block listener failed")
        return committed
