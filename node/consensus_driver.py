"""The consensus host: runs the pure Tendermint core's effects for one node.

Threads:

* the **driver thread** owns the consensus state; it feeds inputs to
  :func:`yilian.consensus.step`, runs effects (build, validate and commit blocks, sign
  through the :class:`~yilian.node.privval.SigningGuard`, schedule timers) and answers
  sync requests. Everything that touches consensus state happens here, in order.
* the **p2p thread** runs an asyncio loop with the :class:`~yilian.node.p2p.peers.PeerManager`;
  received messages are decoded there and queued for the driver.

Invariants:

* Every consensus message fed to the core has a valid signature by a validator of the
  height (checked here), and every proposed block fed as valid was re-executed on the
  committed head (``ChainCore.import_block``) and matched its header, state root included.
* A block is committed only with a commit certificate that verifies against the
  validator set; the certificate is stored in the same atomic batch as the block
  (``i`` ``cert`` + number) and served with it (sync, ``yilian_getCommitCertificate``).
* Signing goes through the guard, which syncs its record before a signature exists:
  a restarted validator never signs a vote conflicting with one it signed before. It
  resumes the height with every message it signed in it (``Resume``, from the guard's
  sign log: round, step and lock restored) and re-broadcasts them, proposal and block
  included, so a restart of any set of validators, all of them included, cannot deadlock.
* Idle: a new height starts only when there are transactions to include, a peer sent a
  message for that height, or a heartbeat is due; so no empty blocks while idle.

Validator sets are the genesis' for every height (set changes are not implemented yet).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI

from yilian.consensus import (
    CommitCertificate,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    Effect,
    Evidence,
    InvalidCertificate,
    Proposal,
    ProposalReceived,
    RequestValue,
    Resume,
    RoundStep,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
    TimeoutFired,
    Validator,
    ValidatorSet,
    ValueToPropose,
    Vote,
    VoteReceived,
    VoteType,
    check_certificate,
    initial_state,
    proposal_sign_bytes,
    step,
    vote_sign_bytes,
)
from yilian.consensus.machine import Input
from yilian.node import wire
from yilian.node.block_sync import BlockSync
from yilian.node.chain import BuiltBlock, ChainError
from yilian.node.crypto.suites import Suite
from yilian.node.evidence import evidence_record
from yilian.node.faults import FAULT_EXIT_CODE, crash_after_sign
from yilian.node.height_pacing import Pacing, start_delay
from yilian.node.interfaces import LedgerAPI
from yilian.node.p2p.handshake import Identity, NetworkId
from yilian.node.p2p.peers import PeerAddress, PeerManager
from yilian.node.privval import SigningGuard, SigningRefused, Step
from yilian.node.sign_restore import restore_own
from yilian.node.storage import INDEX
from yilian.node.tx_gossip import TxOutbox, admit_remote_txs, tx_batches

log = logging.getLogger("yilian.consensus")

RESEND_INTERVAL = 1.0
BUILD_BUDGET_FRACTION = 0.4  # of the round-0 propose timeout
# A proposed block's transactions stay this far below what peers decode (header headroom).
MAX_PROPOSAL_TX_BYTES = wire.MAX_BLOCK_BYTES - 1024 * 1024


def _guarded(fn: Callable[..., Any], *args: Any) -> None:
    """Run a p2p send on the loop; a message too large for a frame is logged, not raised."""
    try:
        fn(*args)
    except (ValueError, TypeError) as exc:
        log.error("message of type %s not sent: %s", args[-2] if len(args) > 1 else "?", exc)


@dataclass(frozen=True)
class ConsensusStatus:
    height: int
    round: int
    step: str
    peers: int
    validator: bool


class ConsensusDriver:
    def __init__(self, ledger: LedgerAPI, suite: Suite, private_key: bytes, *, validator: bool,
                 peers: list[PeerAddress], listen: tuple[str, int],
                 timeouts: TimeoutConfig | None = None) -> None:
        self.ledger = ledger
        self.core = ledger.core
        self.suite = suite
        genesis = ledger.genesis
        self.chain_id = str(genesis.chain_id)
        self.vset = ValidatorSet(tuple(
            Validator(suite.node_id(v.node_key), v.node_key, v.power) for v in genesis.validators))
        self.public_key = suite.public_key(private_key)
        own = suite.node_id(self.public_key)
        self.address: bytes | None = own if validator and own in self.vset else None
        self._private = private_key
        self.guard = SigningGuard(ledger.store, lambda m: suite.sign(private_key, m))
        self.timeouts = timeouts or TimeoutConfig(
            propose_ms=2000, propose_delta_ms=500, prevote_ms=500, prevote_delta_ms=250,
            precommit_ms=500, precommit_delta_ms=250, max_ms=30_000)
        self.state: ConsensusState = initial_state(
            ConsensusConfig(address=self.address, timeouts=self.timeouts))
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._timers: list[tuple[float, int, TimeoutFired]] = []
        self._timer_seq = 0
        self._candidates: dict[bytes, BuiltBlock] = {}
        self._bodies: dict[bytes, BlockAPI] = {}
        self._held: dict[int, list[tuple[bytes, int, Any]]] = {}  # future-height messages
        self._current_msgs: dict[tuple[Any, ...], tuple[int, Any]] = {}
        self._pending_height: int | None = None
        self._last_block_at = time.monotonic()
        self._height_started_at = float("-inf")  # when the current height started
        params = ledger.genesis.params
        self.pacing = Pacing(params.block_interval_ms / 1000, params.heartbeat_ms / 1000)
        self.sync = BlockSync(ledger.store, self.core, self._send, self._broadcast)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._p2p_thread: threading.Thread | None = None
        self._txs = TxOutbox(self._broadcast)
        self.peers_config = peers
        self.listen = listen
        self.pm: PeerManager | None = None
        self._network = NetworkId(genesis.chain_id, self.core.genesis_hash())
        self.last_error: str | None = None
        self._crash_after_sign = crash_after_sign()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        ready = threading.Event()
        self._p2p_thread = threading.Thread(target=self._run_p2p, args=(ready,), name="p2p",
                                            daemon=True)
        self._p2p_thread.start()
        ready.wait(10)
        self._thread = threading.Thread(target=self._run, name="consensus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop = self._loop
        if loop is not None and self.pm is not None:
            fut = asyncio.run_coroutine_threadsafe(self.pm.close(), loop)
            try:
                fut.result(timeout=10)
            except Exception:
                log.exception("closing the p2p layer failed")
            loop.call_soon_threadsafe(loop.stop)
        if self._p2p_thread is not None:
            self._p2p_thread.join(timeout=10)

    def status(self) -> ConsensusStatus:
        s = self.state
        peers = len(self.pm.connected_peers()) if self.pm is not None else 0
        return ConsensusStatus(s.height, s.round, s.step.name, peers, self.address is not None)

    # -- p2p thread ------------------------------------------------------------------------------
    def _run_p2p(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        members = self.ledger.genesis.member_keys
        self.pm = PeerManager(
            identity=Identity(self.public_key, lambda m: self.suite.sign(self._private, m)),
            network=self._network, verify=self.suite.verify, members=members,
            on_message=self._on_message, peers=self.peers_config,
            listen_host=self.listen[0], listen_port=self.listen[1],
            on_peer_connected=self._on_peer_connected,
            send_queue_size=4096, overflow="drop", max_frame_bytes=wire.MAX_FRAME_BYTES,
        )
        try:
            loop.run_until_complete(self.pm.start())
        except OSError as exc:
            self.last_error = f"p2p cannot listen on {self.listen}: {exc}"
            log.error(self.last_error)
        ready.set()
        loop.run_forever()
        loop.close()

    def _on_message(self, peer: bytes, msg_type: int, body: Any) -> None:
        if msg_type == wire.TXS:
            admit_remote_txs(body, self.ledger.submit)
        else:
            self._inbox.put(("msg", (peer, msg_type, body)))

    def _on_peer_connected(self, peer: bytes) -> None:
        self._inbox.put(("connected", peer))

    def gossip_tx(self, raw: bytes) -> None:
        """Queue a locally admitted transaction for the peers (batched)."""
        loop = self._loop
        if loop is not None:
            self._txs.add(raw, loop)

    def _broadcast(self, msg_type: int, body: Any) -> None:
        loop, pm = self._loop, self.pm
        if loop is None or pm is None:
            return
        if threading.current_thread() is self._p2p_thread:
            _guarded(pm.broadcast, msg_type, body)
        else:
            loop.call_soon_threadsafe(_guarded, pm.broadcast, msg_type, body)

    def _send(self, peer: bytes, msg_type: int, body: Any) -> None:
        loop, pm = self._loop, self.pm
        if loop is not None and pm is not None:
            loop.call_soon_threadsafe(_guarded, pm.send, peer, msg_type, body)

    # -- driver thread ---------------------------------------------------------------------
    def _run(self) -> None:
        head = self.core.head().block_number
        if self.guard.records(head + 1):
            self._start_height(head + 1)  # we were mid-height before a restart
        else:
            self._pending_height = head + 1  # starts once there is something to decide
        last_resend = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            wait = min(RESEND_INTERVAL, 0.2)
            if self._timers:
                wait = min(wait, max(0.0, self._timers[0][0] - now))
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
                self.last_error = repr(exc)
                log.exception("consensus driver error")

    def _handle(self, kind: str, item: Any) -> None:
        if kind == "msg":
            peer, msg_type, body = item
            try:
                self._on_peer_message(peer, msg_type, body)
            except wire.WireError as exc:
                log.info("dropped a malformed message (type %d) from %s: %s", msg_type,
                         peer.hex()[:12], exc)
        elif kind == "connected":
            for msg_type, body in list(self._current_msgs.values()):
                self._send(item, msg_type, body)
            head = self.core.head()
            self._send(item, wire.STATUS, [head.block_number, head.hash])
            # Transactions are gossiped once, on admission, to the peers connected then:
            # a peer that (re)connects gets the pending ones now, or it may never see them
            # (an observer never proposes them itself).
            for chunk in tx_batches(self.ledger.mempool.pending_raw()):
                self._send(item, wire.TXS, chunk)

    def _feed(self, first: Input) -> None:
        pending: list[Input] = [first]
        while pending:
            self.state, effects = step(self.state, pending.pop(0))
            for effect in effects:
                more = self._run_effect(effect)
                if more is not None:
                    pending.append(more)

    def _start_height(self, height: int) -> None:
        """Start ``height``; after a restart mid-height, with what we signed in it."""
        self._pending_height = None
        self._height_started_at = time.monotonic()
        self._current_msgs.clear()
        inputs: tuple[ProposalReceived | VoteReceived, ...] = ()
        if self.address is not None:
            own = restore_own(self.guard, height, self.chain_id, self.address, self._validate)
            for p, block in own.proposals:
                if block is not None:
                    self._broadcast(*self._remember_proposal(p, block))
            for vote in own.votes:
                self._broadcast(*self._remember_vote(vote))
            inputs = own.inputs
        self._feed(Resume(height, self.vset, inputs))
        for peer, msg_type, body in self._held.pop(height, []):
            self._on_peer_message(peer, msg_type, body)
        for h in [h for h in self._held if h < height]:
            del self._held[h]

    def _start_wait(self) -> float | None:
        h = self._pending_height
        return None if h is None else start_delay(
            self.pacing, now=time.monotonic(), height_started_at=self._height_started_at,
            last_commit_at=self._last_block_at, txs_ready=self.ledger.mempool.has_ready.is_set(),
            peer_started=h in self._held)

    def _maybe_start_pending(self) -> None:
        if self._pending_height is not None and self._start_wait() == 0.0:
            self._start_height(self._pending_height)

    # -- effects ---------------------------------------------------------------------------
    def _run_effect(self, effect: Effect) -> Input | None:
        if isinstance(effect, ScheduleTimeout):
            self._timer_seq += 1
            deadline = time.monotonic() + effect.duration_ms / 1000
            heapq.heappush(self._timers, (deadline, self._timer_seq,
                                          TimeoutFired(effect.kind, effect.height, effect.round)))
            return None
        if isinstance(effect, RequestValue):
            return self._propose_value(effect)
        if isinstance(effect, SignProposal):
            return self._sign_proposal(effect)
        if isinstance(effect, SignVote):
            return self._sign_vote(effect)
        if isinstance(effect, Decide):
            self._decide(effect)
            return None
        if isinstance(effect, Evidence):
            self._record_evidence(effect)
            return None
        raise AssertionError(f"unknown effect {effect!r}")

    def _propose_value(self, effect: RequestValue) -> Input | None:
        if self.core.head().block_number != effect.height - 1:
            return None
        params = self.ledger.genesis.params
        budget = self.timeouts.propose_ms / 1000 * BUILD_BUDGET_FRACTION
        built = self.ledger.build(self.ledger.mempool.select(params.max_tx_per_block),
                                proposer=self.address, budget_s=budget,
                                max_bytes=MAX_PROPOSAL_TX_BYTES)
        value_id = bytes(built.block.hash)
        self._candidates[value_id] = built
        self._bodies[value_id] = built.block
        return ValueToPropose(effect.height, effect.round, value_id)

    def _sign_proposal(self, effect: SignProposal) -> Input | None:
        assert self.address is not None
        block = self._bodies.get(effect.value_id)
        if block is None:
            log.warning("cannot re-propose %s: its block is gone", effect.value_id.hex()[:12])
            return None
        unsigned = Proposal(effect.height, effect.round, effect.value_id, effect.valid_round,
                            self.address)
        try:
            sig = self.guard.sign(effect.height, effect.round, Step.PROPOSE,
                                  proposal_sign_bytes(self.chain_id, unsigned), effect.value_id,
                                  valid_round=effect.valid_round,
                                  block=wire.encode_block(block))
        except SigningRefused as exc:
            log.warning("%s", exc)
            return None
        signed = Proposal(effect.height, effect.round, effect.value_id, effect.valid_round,
                          self.address, sig)
        self._broadcast(*self._remember_proposal(signed, block))
        return ProposalReceived(signed, value_valid=True)

    def _remember_proposal(self, p: Proposal, block: BlockAPI) -> tuple[int, Any]:
        """Keep an own proposal for re-sending; returns what to broadcast."""
        body = wire.encode_proposal(p, block)
        self._current_msgs[("p", p.height, p.round, p.proposer, p.value_id)] = (
            wire.PROPOSAL, body)
        return wire.PROPOSAL, body

    def _remember_vote(self, vote: Vote) -> tuple[int, Any]:
        """Keep an own vote for re-sending; returns what to broadcast."""
        body = wire.encode_vote(vote)
        self._current_msgs[("v", vote.type, vote.height, vote.round, vote.validator,
                            vote.value_id)] = (wire.VOTE, body)
        return wire.VOTE, body

    def _sign_vote(self, effect: SignVote) -> Input | None:
        assert self.address is not None
        unsigned = Vote(effect.type, effect.height, effect.round, effect.value_id, self.address)
        # a lock's block is logged with it: after a full restart we can re-propose it
        locked = (self._bodies.get(effect.value_id) if effect.value_id is not None
                  and effect.type == VoteType.PRECOMMIT else None)
        try:
            sig = self.guard.sign(effect.height, effect.round, Step(int(effect.type)),
                                  vote_sign_bytes(self.chain_id, unsigned), effect.value_id,
                                  block=None if locked is None else wire.encode_block(locked))
        except SigningRefused as exc:
            log.warning("%s", exc)
            return None
        vote = Vote(effect.type, effect.height, effect.round, effect.value_id, self.address, sig)
        if self._crash_after_sign is not None and self._crash_after_sign == (
                int(effect.type), effect.height):
            log.warning("fault injection: exiting after signing, before sending")
            os._exit(FAULT_EXIT_CODE)
        self._broadcast(*self._remember_vote(vote))
        return VoteReceived(vote)

    def _decide(self, effect: Decide) -> None:
        built = self._candidates.get(effect.value_id)
        if built is None:
            log.info("decided height %d without its block; asking peers", effect.height)
            self.sync.request(force=True)
            return
        cert = effect.certificate
        # the certificate and the pruning of the height's sign log land with the block
        self.ledger.commit_block(built, {**self.sync.certificate_writes(cert),
                                       **self.guard.prune_writes(effect.height + 1)})
        self._last_block_at = time.monotonic()
        log.info("committed height %d round %d (%d txs)", effect.height, cert.round,
                 len(built.block.transactions))
        for other in self._candidates.values():
            if other is not built:
                other.overlay.discard()
        self._candidates.clear()
        self._bodies.clear()
        self._timers = [t for t in self._timers if t[2].height > effect.height]
        heapq.heapify(self._timers)
        head = self.core.head()
        self._broadcast(wire.STATUS, [head.block_number, head.hash])
        self._pending_height = effect.height + 1
        self._current_msgs.clear()

    def _record_evidence(self, effect: Evidence) -> None:
        ev = effect.evidence
        vote = ev.vote_a
        log.warning("equivocation by validator %s at height %d round %d",
                    vote.validator.hex(), vote.height, vote.round)
        self.ledger.store.put(INDEX, *evidence_record(ev), sync=True)

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fired = heapq.heappop(self._timers)
            if fired.height == self.state.height:
                self._feed(fired)

    # -- messages from peers ---------------------------------------------------------------
    def _verify_vote(self, vote: Vote) -> bool:
        validator = self.vset.get(vote.validator)
        return validator is not None and self.suite.verify(
            validator.public_key, vote_sign_bytes(self.chain_id, vote), vote.signature)

    def _on_peer_message(self, peer: bytes, msg_type: int, body: Any) -> None:
        head = self.core.head().block_number
        if msg_type == wire.VOTE:
            vote = wire.decode_vote(body)
            key: tuple[Any, ...] = ("v", vote.type, vote.height, vote.round, vote.validator,
                                    vote.value_id)
            if key in self._current_msgs:
                return  # already have it (resent)
            if vote.height <= head:
                self.sync.help_lagging(peer, vote.height)
                return
            if not self._verify_vote(vote):
                log.info("ignored a vote with a bad signature or from a non-validator")
                return
            if vote.height > self.state.height or self._pending_height is not None:
                self._hold(vote.height, peer, msg_type, body)
                if vote.height > head + 1:
                    self.sync.request()
                return
            self._current_msgs[key] = (msg_type, body)
            self._feed(VoteReceived(vote))
        elif msg_type == wire.PROPOSAL:
            if isinstance(body, list) and len(body) == 7:
                key = ("p", body[0], body[1], body[4], body[2])  # h, r, proposer, value
                if key in self._current_msgs:
                    return  # already have it: skip decoding the block again
            proposal, block = wire.decode_proposal(body)
            if proposal.height <= head:
                self.sync.help_lagging(peer, proposal.height)
                return
            validator = self.vset.get(proposal.proposer)
            if validator is None or not self.suite.verify(
                    validator.public_key, proposal_sign_bytes(self.chain_id, proposal),
                    proposal.signature):
                log.info("ignored a proposal with a bad signature or from a non-validator")
                return
            if proposal.height > head + 1 or self._pending_height is not None:
                self._hold(proposal.height, peer, msg_type, body)
                if proposal.height > head + 1:
                    self.sync.request()
                return
            valid = self._validate(block)
            self._current_msgs.setdefault(("p", proposal.height, proposal.round,
                                           proposal.proposer, proposal.value_id),
                                          (msg_type, body))
            self._feed(ProposalReceived(proposal, value_valid=valid))
        elif msg_type in (wire.COMMIT, wire.SYNC_RESPONSE):
            items = ([wire.decode_commit(body)] if msg_type == wire.COMMIT
                     else wire.decode_sync_response(body))
            for cert, block in items:
                self._apply_decided(cert, block)
            if items and self.core.head().block_number < items[-1][0].height:
                self.sync.request(force=True)
        elif msg_type == wire.STATUS:
            height, _ = wire.decode_status(body)
            if height > head:
                self.sync.request(peer=peer)
        elif msg_type == wire.SYNC_REQUEST:
            self.sync.serve(peer, body)
        else:
            log.info("ignored a message of unknown type %d", msg_type)

    def _hold(self, height: int, peer: bytes, msg_type: int, body: Any) -> None:
        if height > self.core.head().block_number + 64:
            return
        held = self._held.setdefault(height, [])
        if len(held) < 10_000:
            held.append((peer, msg_type, body))

    def _validate(self, block: BlockAPI) -> bool:
        value_id = bytes(block.hash)
        if value_id in self._candidates:
            return True
        try:
            built = self.core.import_block(block)
        except ChainError as exc:
            log.info("rejected proposed block %s: %s", value_id.hex()[:12], exc)
            return False
        self._candidates[value_id] = built
        self._bodies[value_id] = block
        return True

    def _apply_decided(self, cert: CommitCertificate, block: BlockAPI) -> None:
        """Adopt a block decided elsewhere: verify its certificate, execute, commit."""
        head = self.core.head().block_number
        if cert.height != head + 1:
            return
        try:
            check_certificate(cert, self.vset, self.chain_id, self.suite.verify)
        except InvalidCertificate as exc:
            log.warning("rejected a commit certificate for height %d: %s", cert.height, exc)
            return
        if not self._validate(block):
            log.error("a certified block at height %d does not execute here", cert.height)
            return
        if self.state.height != cert.height or self._pending_height is not None:
            self._start_height(cert.height)
        self._feed(CommitReceived(cert))
        if self.state.step is not RoundStep.COMMIT and self.core.head().block_number == head:
            log.warning("the core did not accept the commit certificate for height %d",
                        cert.height)

    def _resend(self) -> None:
        """Re-broadcast this height's votes (the paper's gossip assumption) and status.

        Proposals carry whole blocks; they go again to a peer when it (re)connects, which
        is when a TCP link can have lost them.
        """
        if self._pending_height is None:
            for msg_type, body in list(self._current_msgs.values()):
                if msg_type == wire.VOTE:
                    self._broadcast(msg_type, body)
        head = self.core.head()
        self._broadcast(wire.STATUS, [head.block_number, head.hash])

    # -- queries ---------------------------------------------------------------------------
    def certificate(self, height: int) -> CommitCertificate | None:
        return self.sync.certificate(height)

