"""Block sync: committed blocks with their commit certificates, served to lagging peers and
asked for when this node is behind.

Invariants:

* A committed block's certificate is stored beside it, in the block's own atomic batch
  (:meth:`BlockSync.certificate_writes`, ``i`` + ``cert`` + number), and served with it.
* A sync response never exceeds ``wire.MAX_SYNC_RESPONSE_BYTES`` (beyond its first block);
  the asker asks again for the rest.
* Requests are rate-limited (``SYNC_RETRY`` unless forced) and each (peer, height) is
  helped once (a bounded memory), so a chatty peer cannot make this node flood.

What arrives (``COMMIT`` / ``SYNC_RESPONSE``) is checked and applied by the consensus
driver, which owns the consensus state.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import msgpack

from yilian.consensus import CommitCertificate
from yilian.node import wire
from yilian.node.chain import ChainCore
from yilian.node.storage import CERTIFICATE, INDEX, Store

SYNC_RETRY = 2.0
MAX_HELPED = 10_000

Send = Callable[[bytes, int, Any], None]
Broadcast = Callable[[int, Any], None]


def _be8(n: int) -> bytes:
    return struct.pack(">Q", n)


class BlockSync:
    def __init__(self, store: Store, core: ChainCore, send: Send,
                 broadcast: Broadcast) -> None:
        self._store = store
        self._core = core
        self._send = send
        self._broadcast = broadcast
        self._asked_at = 0.0
        self._helped: set[tuple[bytes, int]] = set()

    @staticmethod
    def certificate_writes(cert: CommitCertificate) -> dict[bytes, bytes | None]:
        """The writes that store ``cert`` in its block's commit batch."""
        key = INDEX + CERTIFICATE + _be8(cert.height)
        return {key: msgpack.packb(wire.encode_certificate(cert))}

    def certificate(self, height: int) -> CommitCertificate | None:
        raw = self._store.get(INDEX, CERTIFICATE + _be8(height))
        return None if raw is None else wire.decode_certificate(msgpack.unpackb(raw))

    def committed_item(self, height: int) -> list[Any] | None:
        """``[certificate, block]`` (wire encodings) of committed ``height``, if stored."""
        raw = self._store.get(INDEX, CERTIFICATE + _be8(height))
        header = self._core.header_by_number(height)
        if raw is None or header is None:
            return None
        block = self._core.block_by_header(header)
        return [msgpack.unpackb(raw), wire.encode_block(block)]

    def help_lagging(self, peer: bytes, height: int) -> None:
        """``peer`` sent a message for committed ``height``: send it that block (once)."""
        if (peer, height) in self._helped:
            return
        if len(self._helped) > MAX_HELPED:
            self._helped.clear()
        self._helped.add((peer, height))
        item = self.committed_item(height)
        if item is not None:
            self._send(peer, wire.COMMIT, item)

    def request(self, peer: bytes | None = None, force: bool = False) -> None:
        """Ask ``peer`` (or everyone) for the blocks after our head."""
        now = time.monotonic()
        if not force and now - self._asked_at < SYNC_RETRY:
            return
        self._asked_at = now
        body = [self._core.head().block_number + 1, wire.MAX_SYNC_BLOCKS]
        if peer is not None:
            self._send(peer, wire.SYNC_REQUEST, body)
        else:
            self._broadcast(wire.SYNC_REQUEST, body)

    def serve(self, peer: bytes, body: Any) -> None:
        """Answer a ``SYNC_REQUEST`` with the committed blocks it asks for."""
        start, count = wire.decode_sync_request(body)
        head = self._core.head().block_number
        out: list[Any] = []
        size = 0
        for h in range(start, min(start + count, head + 1)):
            item = self.committed_item(h)
            if item is None:
                break
            size += len(item[1])
            if out and size > wire.MAX_SYNC_RESPONSE_BYTES:
                break  # the rest in the next request
            out.append(item)
        if out:
            self._send(peer, wire.SYNC_RESPONSE, out)
