"""Waiting for a transaction to commit without holding a thread.

A caller on an event loop (an HTTP request, the key service) registers an asyncio future
under the transaction's hash and awaits it; the node's commit path, in whatever thread
commits the block (block producer or consensus driver), resolves it with
``loop.call_soon_threadsafe``. Waiting therefore costs a future and a coroutine, never a
worker thread, so any number of slow or never-committing transactions cannot starve the
threads that serve health checks, JSON-RPC and reads.

This lives in ``node/`` (the host) rather than ``api/`` because the commit listener and the
key service, which waits for its own center transactions, are node code; how many callers
may wait at once is API policy (:mod:`yilian.api.waiting`).

Invariants:

* a waiter is registered *before* the "already committed?" check, so a commit landing
  between the check and the wait still resolves it (no lost wake-up);
* a future is resolved only on its own loop, at most once; a waiter that times out or is
  cancelled removes itself, so the registry holds only live waiters;
* ``resolve`` never blocks and never raises (a closed loop is skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CommitWaiters:
    """Futures waiting for transaction hashes to appear in a committed block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_hash: dict[bytes, set[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(futures) for futures in self._by_hash.values())

    async def wait(self, tx_hash: bytes, timeout: float,
                   is_committed: Callable[[bytes], bool]) -> bool:
        """True once ``tx_hash`` is committed, False if ``timeout`` seconds pass first."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._by_hash.setdefault(tx_hash, set()).add(future)
        try:
            if is_committed(tx_hash):
                return True
            try:
                async with asyncio.timeout(timeout):
                    await future
                return True
            except TimeoutError:
                return is_committed(tx_hash)
        finally:
            with self._lock:
                futures = self._by_hash.get(tx_hash)
                if futures is not None:
                    futures.discard(future)
                    if not futures:
                        del self._by_hash[tx_hash]

    def resolve(self, tx_hashes: Iterable[bytes]) -> None:
        """Wake every waiter of ``tx_hashes`` (called by the commit path, any thread)."""
        with self._lock:
            if not self._by_hash:
                return
            woken = [f for h in tx_hashes for f in self._by_hash.pop(h, ())]
        for future in woken:
            # a closed loop raises RuntimeError: nobody is waiting there any more
            with contextlib.suppress(RuntimeError):
                future.get_loop().call_soon_threadsafe(_set_done, future)
