"""What the consensus driver holds for the height being decided: candidate blocks (built
here or re-executed from a proposal) and the consensus messages of the height (its own, to
re-send, and received ones, to skip duplicates).

Invariants:

* A block is a candidate only after it was built on the committed head or re-executed on
  it and matched its header (``ChainCore.import_block``), state root included.
* A proposed block is re-executed with the mempool's own objects for the transactions the
  mempool holds (same hash, so the same signed bytes): their senders, recovered on
  admission, are not recovered again.
* Everything here belongs to one height: :meth:`HeightMemory.forget_blocks` and
  :meth:`HeightMemory.forget_messages` run when a height is decided or (re)started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from eth.abc import BlockAPI, SignedTransactionAPI

from yilian.consensus import Proposal, Vote
from yilian.node import wire
from yilian.node.chain import BuiltBlock, ChainCore, ChainError

log = logging.getLogger("yilian.consensus")

MessageKey = tuple[Any, ...]


class HeightMemory:
    def __init__(self, core: ChainCore,
                 known: Callable[[bytes], SignedTransactionAPI | None] | None = None) -> None:
        self.core = core
        self._known = known  # the mempool's transaction by hash
        self.candidates: dict[bytes, BuiltBlock] = {}
        self.bodies: dict[bytes, BlockAPI] = {}
        self.messages: dict[MessageKey, tuple[int, Any]] = {}

    def add_built(self, built: BuiltBlock) -> bytes:
        """Keep a block built here; returns its value id (hash)."""
        value_id = bytes(built.block.hash)
        self.candidates[value_id] = built
        self.bodies[value_id] = built.block
        return value_id

    def validate(self, block: BlockAPI) -> bool:
        """Re-execute a proposed block on the committed head; True if it is a candidate."""
        value_id = bytes(block.hash)
        if value_id in self.candidates:
            return True
        try:
            built = self.core.import_block(self._with_known_txs(block))
        except ChainError as exc:
            log.info("rejected proposed block %s: %s", value_id.hex()[:12], exc)
            return False
        self.candidates[value_id] = built
        self.bodies[value_id] = block
        return True

    def _with_known_txs(self, block: BlockAPI) -> BlockAPI:
        """``block`` with the transactions the mempool holds replaced by its objects."""
        if self._known is None or not block.transactions:
            return block
        known = self._known
        txs = [known(bytes(tx.hash)) or tx for tx in block.transactions]
        if all(a is b for a, b in zip(txs, block.transactions, strict=True)):
            return block
        return block.copy(transactions=txs)

    def forget_blocks(self, keep: BuiltBlock | None = None) -> None:
        """Drop every candidate (discarding the overlays of all but ``keep``)."""
        for other in self.candidates.values():
            if other is not keep:
                other.overlay.discard()
        self.candidates.clear()
        self.bodies.clear()

    def forget_messages(self) -> None:
        self.messages.clear()

    def remember_proposal(self, p: Proposal, block: BlockAPI) -> tuple[int, Any]:
        """Keep an own proposal for re-sending; returns what to broadcast."""
        body = wire.encode_proposal(p, block)
        self.messages[("p", p.height, p.round, p.proposer, p.value_id)] = (wire.PROPOSAL, body)
        return wire.PROPOSAL, body

    def remember_vote(self, vote: Vote) -> tuple[int, Any]:
        """Keep an own vote for re-sending; returns what to broadcast."""
        body = wire.encode_vote(vote)
        self.messages[vote_key(vote)] = (wire.VOTE, body)
        return wire.VOTE, body


def vote_key(vote: Vote) -> MessageKey:
    return ("v", vote.type, vote.height, vote.round, vote.validator, vote.value_id)
