"""The consensus host: runs the pure Tendermint core for one node.

It composes the parts, one concept each: :mod:`~yilian.node.p2p_bridge` (the p2p thread
and sending), :mod:`~yilian.node.message_intake` (peer messages to core inputs, future
heights held), :mod:`~yilian.node.consensus_effects` (signing, proposing, deciding, timers),
:mod:`~yilian.node.height_memory` (candidate blocks and messages of the height),
:mod:`~yilian.node.block_sync`, :mod:`~yilian.node.tx_gossip`,
:mod:`~yilian.node.sign_restore` and :mod:`~yilian.node.height_pacing`. It reaches the
chain only through :class:`~yilian.node.interfaces.LedgerAPI`.

Threads:

* the **driver thread** owns the consensus state; it feeds inputs to
  :func:`yilian.consensus.step`, runs effects and answers sync requests. Everything that
  touches consensus state happens here, in order.
* the **p2p thread** (the bridge) decodes received messages and queues them for the driver,
  and gossiped transactions for the **tx-intake thread**, which admits them
  (:class:`~yilian.node.tx_gossip.RemoteTxIntake`).

Invariants:

* A block is committed only with a commit certificate that verifies against the
  validator set; the certificate is stored in the same atomic batch as the block
  (``i`` ``cert`` + number) and served with it (sync, ``yilian_getCommitCertificate``).
* A restarted validator resumes the height with every message it signed in it
  (``Resume``, from the guard's sign log: round, step and lock restored) and re-broadcasts
  them, proposal and block included, so a restart of any set of validators, all of them
  included, cannot deadlock.
* Idle: a new height starts only when there are transactions to include, a peer sent a
  message for that height, or a heartbeat is due; so no empty blocks while idle.

Validator sets are the genesis' for every height (set changes are not implemented yet).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from yilian.consensus import (
    CommitCertificate,
    ConsensusConfig,
    ConsensusState,
    ProposalReceived,
    Resume,
    TimeoutConfig,
    Validator,
    ValidatorSet,
    VoteReceived,
    initial_state,
    step,
)
from yilian.consensus.machine import Input
from yilian.crypto.suites import Suite
from yilian.node import wire
from yilian.node.block_sync import BlockSync
from yilian.node.consensus_effects import Effects
from yilian.node.height_memory import HeightMemory
from yilian.node.height_pacing import Pacing, start_delay
from yilian.node.interfaces import ConsensusStatus, LedgerAPI
from yilian.node.message_intake import MessageIntake
from yilian.node.p2p.handshake import Identity, NetworkId
from yilian.node.p2p.peers import PeerAddress, PeerManager
from yilian.node.p2p_bridge import P2pBridge
from yilian.node.privval import SigningGuard
from yilian.node.sign_restore import restore_own
from yilian.node.tx_gossip import RemoteTxIntake, tx_batches

log = logging.getLogger("yilian.consensus")

RESEND_INTERVAL = 1.0


class ConsensusDriver:
    def __init__(self, ledger: LedgerAPI, suite: Suite, private_key: bytes, *, validator: bool,
                 peers: list[PeerAddress], listen: tuple[str, int],
                 timeouts: TimeoutConfig | None = None) -> None:
        self.ledger = ledger
        self.core = ledger.core
        genesis = ledger.genesis
        self.chain_id = str(genesis.chain_id)
        self.vset = ValidatorSet(tuple(
            Validator(suite.node_id(v.node_key), v.node_key, v.power) for v in genesis.validators))
        self.public_key = suite.public_key(private_key)
        own = suite.node_id(self.public_key)
        self.address: bytes | None = own if validator and own in self.vset else None
        self.guard = SigningGuard(ledger.store, lambda m: suite.sign(private_key, m))
        self.timeouts = timeouts or TimeoutConfig(
            propose_ms=2000, propose_delta_ms=500, prevote_ms=500, prevote_delta_ms=250,
            precommit_ms=500, precommit_delta_ms=250, max_ms=30_000)
        self.state: ConsensusState = initial_state(
            ConsensusConfig(address=self.address, timeouts=self.timeouts))
        self.pending_height: int | None = None
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._last_block_at = time.monotonic()
        self._height_started_at = float("-inf")  # when the current height started
        params = genesis.params
        self.pacing = Pacing(params.block_interval_ms / 1000, params.heartbeat_ms / 1000)
        self.p2p = P2pBridge(
            Identity(self.public_key, lambda m: suite.sign(private_key, m)),
            NetworkId(genesis.chain_id, self.core.genesis_hash()), suite.verify,
            genesis.member_keys, peers=peers, listen=listen, on_message=self._on_message,
            on_peer_connected=self._on_peer_connected)
        self.sync = BlockSync(ledger.store, self.core, self.p2p.send, self.p2p.broadcast)
        self.memory = HeightMemory(self.core, known=ledger.mempool.get)
        self.effects = Effects(ledger, self.guard, self.memory, self.sync, self.p2p.broadcast,
                               chain_id=self.chain_id, address=self.address,
                               timeouts=self.timeouts, on_decided=self._decided)
        self.intake = MessageIntake(self.core, self.vset, suite, self.chain_id, self.memory,
                                    self.sync, self)
        self.tx_intake = RemoteTxIntake(ledger.submit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.tx_intake.start()
        self.p2p.start()
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.p2p.stop()
        self.tx_intake.stop()

    @property
    def pm(self) -> PeerManager | None:
        return self.p2p.pm

    @property
    def last_error(self) -> str | None:
        """The driver's last error, else the p2p layer's (e.g. it cannot listen)."""
        return self._error or self.p2p.last_error

    def status(self) -> ConsensusStatus:
        s = self.state
        return ConsensusStatus(s.height, s.round, s.step.name, self.p2p.connected_peers(),
                               self.address is not None)

    def certificate(self, height: int) -> CommitCertificate | None:
        return self.sync.certificate(height)

    # -- from the p2p thread -----------------------------------------------------------------
    def _on_message(self, peer: bytes, msg_type: int, body: Any) -> None:
        if msg_type == wire.TXS:
            self.tx_intake.offer(body)  # admitted on its own thread, not this loop
        else:
            self._inbox.put(("msg", (peer, msg_type, body)))

    def _on_peer_connected(self, peer: bytes) -> None:
        self._inbox.put(("connected", peer))

    # -- driver thread ---------------------------------------------------------------------
    def _run(self) -> None:
        head = self.core.head().block_number
        if self.guard.records(head + 1):
            self.start_height(head + 1)  # we were mid-height before a restart
        else:
            self.pending_height = head + 1  # starts once there is something to decide
        last_resend = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            wait = min(RESEND_INTERVAL, 0.2)
            deadline = self.effects.next_deadline()
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            start_in = self._start_wait()
            if start_in is not None:
                wait = min(wait, start_in)
            try:
                kind, item = self._inbox.get(timeout=wait)
            except queue.Empty:
                kind, item = "tick", None
            if kind == "stop":
                break
            try:
                self._handle(kind, item)
                self._fire_timers()
                self._maybe_start_pending()
                if time.monotonic() - last_resend >= RESEND_INTERVAL:
                    last_resend = time.monotonic()
                    self._resend()
            except Exception as exc:  # keep the node alive; log the bug
                self._error = repr(exc)
                log.exception("consensus driver error")

    def _handle(self, kind: str, item: Any) -> None:
        if kind == "msg":
            peer, msg_type, body = item
            try:
                self.intake.on_peer_message(peer, msg_type, body)
            except wire.WireError as exc:
                log.info("dropped a malformed message (type %d) from %s: %s", msg_type,
                         peer.hex()[:12], exc)
        elif kind == "connected":
            for msg_type, body in list(self.memory.messages.values()):
                self.p2p.send(item, msg_type, body)
            head = self.core.head()
            self.p2p.send(item, wire.STATUS, [head.block_number, head.hash])
            # Transactions are gossiped once, on admission, to the peers connected then:
            # a peer that (re)connects gets the pending ones now, or it may never see them
            # (an observer never proposes them itself).
            for chunk in tx_batches(self.ledger.mempool.pending_raw()):
                self.p2p.send(item, wire.TXS, chunk)

    def feed(self, first: Input) -> None:
        """Step the core with ``first`` and every input its effects produce, in order."""
        pending: list[Input] = [first]
        while pending:
            self.state, effects = step(self.state, pending.pop(0))
            for effect in effects:
                more = self.effects.run(effect)
                if more is not None:
                    pending.append(more)

    def start_height(self, height: int) -> None:
        """Start ``height``; after a restart mid-height, with what we signed in it."""
        self.pending_height = None
        self._height_started_at = time.monotonic()
        self.memory.forget_messages()
        inputs: tuple[ProposalReceived | VoteReceived, ...] = ()
        if self.address is not None:
            own = restore_own(self.guard, height, self.chain_id, self.address,
                              self.memory.validate)
            for p, block in own.proposals:
                if block is not None:
                    self.p2p.broadcast(*self.memory.remember_proposal(p, block))
            for vote in own.votes:
                self.p2p.broadcast(*self.memory.remember_vote(vote))
            inputs = own.inputs
        self.feed(Resume(height, self.vset, inputs))
        for peer, msg_type, body in self.intake.release(height):
            self.intake.on_peer_message(peer, msg_type, body)

    def _decided(self, height: int) -> None:
        self._last_block_at = time.monotonic()
        self.pending_height = height + 1

    def _start_wait(self) -> float | None:
        h = self.pending_height
        return None if h is None else start_delay(
            self.pacing, now=time.monotonic(), height_started_at=self._height_started_at,
            last_commit_at=self._last_block_at,
            txs_ready=self.ledger.mempool.has_ready.is_set(),
            peer_started=self.intake.has_held(h))

    def _maybe_start_pending(self) -> None:
        if self.pending_height is not None and self._start_wait() == 0.0:
            self.start_height(self.pending_height)

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while (fired := self.effects.pop_due(now)) is not None:
            if fired.height == self.state.height:
                self.feed(fired)

    def _resend(self) -> None:
        """Re-broadcast this height's votes (the paper's gossip assumption) and status.

        Proposals carry whole blocks; they go again to a peer when it (re)connects, which
        is when a TCP link can have lost them.
        """
        if self.pending_height is None:
            for msg_type, body in list(self.memory.messages.values()):
                if msg_type == wire.VOTE:
                    self.p2p.broadcast(msg_type, body)
        head = self.core.head()
        self.p2p.broadcast(wire.STATUS, [head.block_number, head.hash])
