"""Record ids: each center names its records in its own namespace.

A record id is 32 bytes: the first 8 are those of ``keccak256(center id)`` (Records.vy
refuses a new record whose id is outside the publishing center's namespace, so no center
can take an id another will use), the other 24 come from
``keccak256("yilian-record-id-v1" || center id || client id)``, so a retried publication
with the same client id names the same record and never creates a duplicate.
"""

from __future__ import annotations

from eth_hash.auto import keccak

RECORD_ID_TAG = b"yilian-record-id-v1"
NAMESPACE_BYTES = 8


def namespace(center_id: bytes) -> bytes:
    """The first bytes every record id of this center starts with."""
    return keccak(center_id)[:NAMESPACE_BYTES]


def record_id_for(center_id: bytes, client_id: str) -> bytes:
    """The id of the record ``center_id`` publishes under ``client_id``."""
    tail = keccak(RECORD_ID_TAG + center_id + client_id.encode())[NAMESPACE_BYTES:]
    return namespace(center_id) + tail


def in_namespace(record_id: bytes, center_id: bytes) -> bool:
    return record_id[:NAMESPACE_BYTES] == namespace(center_id)
