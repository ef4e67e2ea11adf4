"""Message intake: consensus messages from peers become inputs of the pure core.

Invariants:

* Every vote and proposal fed to the core has a valid signature by a validator of the
  height (checked here), and every proposed block fed as valid was re-executed on the
  committed head and matched its header (:meth:`HeightMemory.validate`).
* A message for a later height (or for a height not started yet) is held, bounded in
  heights ahead and in count, and replayed when that height starts; one for a decided
  height is answered with block sync instead.
* A block decided elsewhere is adopted only with a commit certificate that verifies
  against the validator set.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from eth.abc import BlockAPI

from yilian.consensus import (
    CommitCertificate,
    CommitReceived,
    ConsensusState,
    InvalidCertificate,
    ProposalReceived,
    RoundStep,
    ValidatorSet,
    Vote,
    VoteReceived,
    check_certificate,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from yilian.consensus.machine import Input
from yilian.crypto.suites import Suite
from yilian.node import wire
from yilian.node.block_sync import BlockSync
from yilian.node.chain import ChainCore
from yilian.node.height_memory import HeightMemory, MessageKey, vote_key

log = logging.getLogger("yilian.consensus")

HOLD_HEIGHTS_AHEAD = 64
HOLD_PER_HEIGHT = 10_000

Held = tuple[bytes, int, Any]  # peer, message type, body


class ConsensusHost(Protocol):
    """What intake needs of the driver: the core's state, and feeding it."""

    @property
    def state(self) -> ConsensusState: ...

    @property
    def pending_height(self) -> int | None: ...

    def feed(self, first: Input) -> None: ...

    def start_height(self, height: int) -> None: ...


class MessageIntake:
    def __init__(self, core: ChainCore, vset: ValidatorSet, suite: Suite, chain_id: str,
                 memory: HeightMemory, sync: BlockSync, host: ConsensusHost) -> None:
        self.core = core
        self.vset = vset
        self.suite = suite
        self.chain_id = chain_id
        self.memory = memory
        self.sync = sync
        self.host = host
        self._held: dict[int, list[Held]] = {}  # future-height messages

    # -- held messages ----------------------------------------------------------------------
    def has_held(self, height: int) -> bool:
        return height in self._held

    def release(self, height: int) -> list[Held]:
        """The messages held for ``height`` (removed), forgetting older heights'."""
        held = self._held.pop(height, [])
        for h in [h for h in self._held if h < height]:
            del self._held[h]
        return held

    def _hold(self, height: int, peer: bytes, msg_type: int, body: Any) -> None:
        if height > self.core.head().block_number + HOLD_HEIGHTS_AHEAD:
            return
        held = self._held.setdefault(height, [])
        if len(held) < HOLD_PER_HEIGHT:
            held.append((peer, msg_type, body))

    # -- intake -----------------------------------------------------------------------------
    def on_peer_message(self, peer: bytes, msg_type: int, body: Any) -> None:
        """Turn one decoded peer message into core inputs (raises ``wire.WireError``)."""
        if msg_type == wire.VOTE:
            self._on_vote(peer, msg_type, body)
        elif msg_type == wire.PROPOSAL:
            self._on_proposal(peer, msg_type, body)
        elif msg_type in (wire.COMMIT, wire.SYNC_RESPONSE):
            items = ([wire.decode_commit(body)] if msg_type == wire.COMMIT
                     else wire.decode_sync_response(body))
            for cert, block in items:
                self._apply_decided(cert, block)
            if items and self.core.head().block_number < items[-1][0].height:
                self.sync.request(force=True)
        elif msg_type == wire.STATUS:
            height, _ = wire.decode_status(body)
            if height > self.core.head().block_number:
                self.sync.request(peer=peer)
        elif msg_type == wire.SYNC_REQUEST:
            self.sync.serve(peer, body)
        else:
            log.info("ignored a message of unknown type %d", msg_type)

    def _verify_vote(self, vote: Vote) -> bool:
        validator = self.vset.get(vote.validator)
        return validator is not None and self.suite.verify(
            validator.public_key, vote_sign_bytes(self.chain_id, vote), vote.signature)

    def _on_vote(self, peer: bytes, msg_type: int, body: Any) -> None:
        head = self.core.head().block_number
        vote = wire.decode_vote(body)
        key = vote_key(vote)
        if key in self.memory.messages:
            return  # already have it (resent)
        if vote.height <= head:
            self.sync.help_lagging(peer, vote.height)
            return
        if not self._verify_vote(vote):
            log.info("ignored a vote with a bad signature or from a non-validator")
            return
        if vote.height > self.host.state.height or self.host.pending_height is not None:
            self._hold(vote.height, peer, msg_type, body)
            if vote.height > head + 1:
                self.sync.request()
            return
        self.memory.messages[key] = (msg_type, body)
        self.host.feed(VoteReceived(vote))

    def _on_proposal(self, peer: bytes, msg_type: int, body: Any) -> None:
        head = self.core.head().block_number
        if isinstance(body, list) and len(body) == 7:
            key: MessageKey = ("p", body[0], body[1], body[4], body[2])  # h, r, proposer, value
            if key in self.memory.messages:
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
        if proposal.height > head + 1 or self.host.pending_height is not None:
            self._hold(proposal.height, peer, msg_type, body)
            if proposal.height > head + 1:
                self.sync.request()
            return
        valid = self.memory.validate(block)
        self.memory.messages.setdefault(("p", proposal.height, proposal.round,
                                         proposal.proposer, proposal.value_id),
                                        (msg_type, body))
        self.host.feed(ProposalReceived(proposal, value_valid=valid))

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
        if not self.memory.validate(block):
            log.error("a certified block at height %d does not execute here", cert.height)
            return
        if self.host.state.height != cert.height or self.host.pending_height is not None:
            self.host.start_height(cert.height)
        self.host.feed(CommitReceived(cert))
        if (self.host.state.step is not RoundStep.COMMIT
                and self.core.head().block_number == head):
            log.warning("the core did not accept the commit certificate for height %d",
                        cert.height)
