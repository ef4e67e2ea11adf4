"""Equivocation evidence: two conflicting votes signed by one validator, kept for auditors.

Stored in the ``INDEX`` table under ``ev`` + height (8 bytes, big-endian) + validator
address; the value is ``msgpack([vote_a, vote_b])`` in the wire encoding of votes, so
anyone can re-verify both signatures.
"""

from __future__ import annotations

import struct

import msgpack

from yilian.consensus import DuplicateVoteEvidence
from yilian.node import wire
from yilian.node.storage import EVIDENCE


def evidence_record(evidence: DuplicateVoteEvidence) -> tuple[bytes, bytes]:
    """(key within INDEX, value) of one piece of evidence."""
    vote = evidence.vote_a
    key = EVIDENCE + struct.pack(">Q", vote.height) + vote.validator
    value = msgpack.packb([wire.encode_vote(evidence.vote_a), wire.encode_vote(evidence.vote_b)])
    return key, value
