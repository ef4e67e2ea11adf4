"""Rebuild a validator's own messages of a height from its sign log, after a restart.

The signing guard (:mod:`yilian.node.privval`) logs every proposal and vote it signs in a
height not yet committed, with the block of each proposal and non-nil precommit. When a
validator restarts in the middle of that height, the consensus driver uses
:func:`restore_own` to get back the very messages it signed (same bytes, same signatures):
it feeds them to the core as :class:`~yilian.consensus.Resume` inputs, so the core knows
what it already signed and resumes in the right round and step, and it re-broadcasts them
(the proposal with its block), so the other validators, which may all have restarted too,
can count them again. Without this a full restart mid-height deadlocks: the guard refuses
to sign anything different, nothing is re-sent, and no quorum or timeout can ever form.

Invariant: a record whose sign bytes do not match the message rebuilt from it (another
chain id or key) is skipped with a warning, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from eth.abc import BlockAPI

from yilian.consensus import (
    Proposal,
    ProposalReceived,
    Vote,
    VoteReceived,
    VoteType,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from yilian.node import wire
from yilian.node.privval import SignedRecord, SigningGuard, Step

log = logging.getLogger("yilian.consensus")


@dataclass(frozen=True)
class OwnMessages:
    """``proposals`` with their block (None if the block is missing or undecodable),
    ``votes``, and ``inputs``: all of them as the core's inputs, in sign order."""

    proposals: tuple[tuple[Proposal, BlockAPI | None], ...]
    votes: tuple[Vote, ...]
    inputs: tuple[ProposalReceived | VoteReceived, ...]


def _block(guard: SigningGuard, rec: SignedRecord) -> BlockAPI | None:
    if rec.value_id is None:
        return None
    raw = guard.block(rec.height, rec.value_id)
    if raw is None:
        return None
    try:
        return wire.decode_block(raw)
    except wire.WireError as exc:
        log.error("sign log: the block of height %d round %d is unreadable: %s",
                  rec.height, rec.round, exc)
        return None


def restore_own(guard: SigningGuard, height: int, chain_id: str, address: bytes,
                validate: Callable[[BlockAPI], bool]) -> OwnMessages:
    """The messages ``address`` signed at ``height``, rebuilt from ``guard``'s log.

    ``validate(block)`` re-executes a logged block on the committed head (and keeps it as a
    candidate, so a proposal or the value of a lock can be committed or re-proposed); an
    own proposal is fed as valid only if its block is there and still valid.
    """
    proposals: list[tuple[Proposal, BlockAPI | None]] = []
    votes: list[Vote] = []
    inputs: list[ProposalReceived | VoteReceived] = []
    for rec in guard.records(height):
        block = _block(guard, rec)
        valid = block is not None and validate(block)
        if rec.step is Step.PROPOSE:
            assert rec.value_id is not None
            p = Proposal(height, rec.round, rec.value_id, rec.valid_round, address,
                         rec.signature)
            if proposal_sign_bytes(chain_id, p) != rec.sign_bytes:
                log.warning("sign log: skipped a proposal signed for another chain or key")
                continue
            if block is None:
                log.error("sign log: the block of our proposal at height %d round %d is "
                          "gone; it cannot be re-sent", height, rec.round)
            proposals.append((p, block))
            inputs.append(ProposalReceived(p, value_valid=valid))
        else:
            v = Vote(VoteType(int(rec.step)), height, rec.round, rec.value_id, address,
                     rec.signature)
            if vote_sign_bytes(chain_id, v) != rec.sign_bytes:
                log.warning("sign log: skipped a vote signed for another chain or key")
                continue
            votes.append(v)
            inputs.append(VoteReceived(v))
    if inputs:
        log.info("restored %d own proposal(s) and %d vote(s) of height %d from the sign log",
                 len(proposals), len(votes), height)
    return OwnMessages(tuple(proposals), tuple(votes), tuple(inputs))
