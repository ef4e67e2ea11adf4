"""Running the pure consensus core's effects for one node: timers, proposing a value
(building a block), signing proposals and votes, deciding (committing with the
certificate) and recording evidence.

Invariants:

* Signing goes through the :class:`~yilian.node.privval.SigningGuard`, which syncs its
  record before a signature exists: a validator never signs a vote conflicting with one it
  signed before, across restarts.
* A block is committed only on ``Decide``, with its commit certificate, in one atomic
  batch with the certificate and the pruning of the height's sign log.
* A timer fires only for the height it was scheduled in.
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from yilian.consensus import (
    Decide,
    Effect,
    Evidence,
    Proposal,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
    TimeoutFired,
    ValueToPropose,
    Vote,
    VoteReceived,
    VoteType,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from yilian.consensus.machine import Input
from yilian.node import wire
from yilian.node.block_sync import BlockSync
from yilian.node.evidence import evidence_record
from yilian.node.faults import FAULT_EXIT_CODE, crash_after_sign
from yilian.node.height_memory import HeightMemory
from yilian.node.interfaces import LedgerAPI
from yilian.node.privval import SigningGuard, SigningRefused, Step
from yilian.node.storage import INDEX

log = logging.getLogger("yilian.consensus")

BUILD_BUDGET_FRACTION = 0.4  # of the round-0 propose timeout
# A proposed block's transactions stay this far below what peers decode (header headroom).
MAX_PROPOSAL_TX_BYTES = wire.MAX_BLOCK_BYTES - 1024 * 1024

Broadcast = Callable[[int, Any], None]


class Effects:
    def __init__(self, ledger: LedgerAPI, guard: SigningGuard, memory: HeightMemory,
                 sync: BlockSync, broadcast: Broadcast, *, chain_id: str,
                 address: bytes | None, timeouts: TimeoutConfig,
                 on_decided: Callable[[int], None]) -> None:
        self.ledger = ledger
        self.guard = guard
        self.memory = memory
        self.sync = sync
        self.broadcast = broadcast
        self.chain_id = chain_id
        self.address = address
        self.timeouts = timeouts
        self.on_decided = on_decided
        self._timers: list[tuple[float, int, TimeoutFired]] = []
        self._timer_seq = 0
        self._crash_after_sign = crash_after_sign()

    def run(self, effect: Effect) -> Input | None:
        """Run one effect; returns the input it produces for the core, if any."""
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

    # -- timers ----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def pop_due(self, now: float) -> TimeoutFired | None:
        """The earliest timer whose deadline is at or before ``now`` (removed), or None."""
        if self._timers and self._timers[0][0] <= now:
            return heapq.heappop(self._timers)[2]
        return None

    # -- proposing and signing ---------------------------------------------------------------
    def _propose_value(self, effect: RequestValue) -> Input | None:
        if self.ledger.core.head().block_number != effect.height - 1:
            return None
        params = self.ledger.genesis.params
        budget = self.timeouts.propose_ms / 1000 * BUILD_BUDGET_FRACTION
        built = self.ledger.build(self.ledger.mempool.select(params.max_tx_per_block),
                                  proposer=self.address, budget_s=budget,
                                  max_bytes=MAX_PROPOSAL_TX_BYTES)
        value_id = self.memory.add_built(built)
        return ValueToPropose(effect.height, effect.round, value_id)

    def _sign_proposal(self, effect: SignProposal) -> Input | None:
        assert self.address is not None
        block = self.memory.bodies.get(effect.value_id)
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
        self.broadcast(*self.memory.remember_proposal(signed, block))
        return ProposalReceived(signed, value_valid=True)

    def _sign_vote(self, effect: SignVote) -> Input | None:
        assert self.address is not None
        unsigned = Vote(effect.type, effect.height, effect.round, effect.value_id, self.address)
        # a lock's block is logged with it: after a full restart we can re-propose it
        locked = (self.memory.bodies.get(effect.value_id) if effect.value_id is not None
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
        self.broadcast(*self.memory.remember_vote(vote))
        return VoteReceived(vote)

    # -- deciding --------------------------------------------------------------------------
    def _decide(self, effect: Decide) -> None:
        built = self.memory.candidates.get(effect.value_id)
        if built is None:
            log.info("decided height %d without its block; asking peers", effect.height)
            self.sync.request(force=True)
            return
        cert = effect.certificate
        # the certificate and the pruning of the height's sign log land with the block
        self.ledger.commit_block(built, {**self.sync.certificate_writes(cert),
                                         **self.guard.prune_writes(effect.height + 1)})
        log.info("committed height %d round %d (%d txs)", effect.height, cert.round,
                 len(built.block.transactions))
        self.memory.forget_blocks(keep=built)
        self._timers = [t for t in self._timers if t[2].height > effect.height]
        heapq.heapify(self._timers)
        head = self.ledger.core.head()
        self.broadcast(wire.STATUS, [head.block_number, head.hash])
        self.memory.forget_messages()
        self.on_decided(effect.height)

    def _record_evidence(self, effect: Evidence) -> None:
        ev = effect.evidence
        vote = ev.vote_a
        log.warning("equivocation by validator %s at height %d round %d",
                    vote.validator.hex(), vote.height, vote.round)
        self.ledger.store.put(INDEX, *evidence_record(ev), sync=True)
