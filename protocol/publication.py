"""The answer to publishing or removing a record, as it travels (``POST /v1/records``,
``POST /v1/records/{id}/remove``): the node's API serves it and the SDK reads it.

Invariants: ``record_id``, ``digest``, ``tx_hash`` and ``block_hash`` are ``0x`` followed
by 64 lowercase hex digits; ``version`` is the published version (a removal is a version
too: its tombstone); ``already_published`` is true when the same client id had published
this version before and the answer is that earlier publication's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedPublic:
    record_id: str
    version: int
    digest: str
    tx_hash: str
    block_number: int
    block_hash: str
    already_published: bool
