"""The signed-request replay window: a signed REST request is served at most once.

A signed request (:mod:`yilian.protocol.signed_request`) carries a nonce and an expiry.
The API asks :meth:`RequestReplay.first_use` before it serves one: the first use of an
(account, nonce) pair is recorded in the node's LevelDB (table ``r``,
:data:`yilian.node.storage.REQUESTS`) until the request's expiry has passed, so a replay
is refused even after a restart. Each node keeps its own window; the audience a request
names (:mod:`yilian.node.audience`) keeps it from being served at another node.

Invariants:

* The check and the record are one step under one lock: two copies of one request
  arriving together are served once.
* An entry is kept at least until its expiry; expired entries are pruned at most once a
  minute (``PRUNE_EVERY_S``), on a use, so the table holds about one expiry window of
  requests.
* Writes are not fsynced: a ``kill -9`` keeps them (the OS has the write); only a machine
  crash within the expiry window could forget one, and then a replay still cannot repeat
  a key release (the chain refuses a used request id) or a publication (versions and
  client ids are idempotent).
"""

from __future__ import annotations

import struct
import threading
import time

from yilian.node.storage import REQUESTS, Store

PRUNE_EVERY_S = 60.0


class RequestReplay:
    """Seen request nonces, persisted until they expire."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def first_use(self, account: bytes, nonce: bytes, expires: int) -> bool:
        """True, and remembered until ``expires`` (unix seconds), the first time ``account``
        presents ``nonce``; False for a replay."""
        key = account + nonce
        with self._lock:
            if self.store.get(REQUESTS, key) is not None:
                return False
            self.store.put(REQUESTS, key, struct.pack(">Q", expires))
            now = time.time()
            if now - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = now
                for k, v in list(self.store.iterate(REQUESTS)):
                    if struct.unpack(">Q", v)[0] < now:
                        self.store.delete(REQUESTS, k)
            return True
