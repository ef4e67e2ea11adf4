"""Access receipts of concurrent single reads, recorded together.

Each single key request (``POST /v1/records/{id}/key``) needs its own access receipt, one
``Grants.record_access`` transaction each. Under load a custodian serves many at once, and
one ``record_access_many`` transaction for all of them costs a fraction of the CPU on
every validator (docs/records.md, Performance). So the key service hands each receipt to
this batcher, which waits ``LINGER_S`` after the first one for others to join, then sends
up to the network's batch size in one transaction; several batches may be in flight.

Each item keeps its own request id, so every per-read rule of the contract (a request id
recorded once, reads counted item by item, all checks per item) holds as for single
transactions, and each waiter gets the committed transaction that holds its receipt.

A batch is all or nothing, so one refused item must not refuse the others: when the
transaction reverts naming an item (``item <i>: <reason>``) that item's waiter gets the
refusal, and each other item is sent again in its own ``record_access`` transaction (all
at once: they settle in the next block, whatever else is refused). A revert that names no
item (its reason is replayed on the parent block, so a race inside the block can hide it)
sends every item on its own that way. Any other failure (``commit_timeout``, a stalled
chain, a full mempool) goes to every waiter of that batch, as it would to their single
transactions.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from yilian.contracts.addresses import access_many_gas
from yilian.node.center_account import CenterAccount
from yilian.node.domain import GRANTS
from yilian.node.key_types import refused_item
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import TxFailed

LINGER_S = 0.02  # a block takes ~0.5 s: waiting 20 ms for company costs little

# (grant id, record id, version, reader, request id): one item of record_access_many
Access = tuple[int, bytes, int, bytes, bytes]


@dataclass
class _Waiter:
    access: Access
    future: asyncio.Future[TxRecord] = field(repr=False)


class ReceiptBatcher:
    """Records access receipts for one event loop's key requests (see the module doc)."""

    def __init__(self, account: CenterAccount, encode: Callable[..., bytes],
                 max_items: int) -> None:
        self._account = account
        self._encode = encode  # Grants' encode_call
        self._max = max(1, max_items)
        # one queue and flusher per event loop (the node has one; tests may have several)
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Queue[_Waiter], asyncio.Task[None]]
        ] = weakref.WeakKeyDictionary()
        self._sends: set[asyncio.Task[None]] = set()

    async def record(self, access: Access) -> TxRecord:
        """The committed transaction holding ``access``'s receipt; TxFailed as a single
        ``record_access`` would fail (``reverted`` with the contract's reason for it)."""
        if self._max == 1:
            return await self._account.send(GRANTS, self._encode("record_access", *access))
        loop = asyncio.get_running_loop()
        queue, flusher = self._loops.get(loop, (None, None))
        if queue is None or flusher is None or flusher.done():
            queue = asyncio.Queue()
            self._loops[loop] = queue, loop.create_task(self._flush_forever(queue))
        waiter = _Waiter(access, loop.create_future())
        queue.put_nowait(waiter)
        return await waiter.future

    async def _flush_forever(self, queue: asyncio.Queue[_Waiter]) -> None:
        while True:
            batch = [await queue.get()]
            await asyncio.sleep(LINGER_S)
            while len(batch) < self._max and not queue.empty():
                batch.append(queue.get_nowait())
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, batch: list[_Waiter]) -> None:
        batch = [w for w in batch if not w.future.done()]  # a caller that went away
        if len(batch) <= 1:
            await asyncio.gather(*(self._send_one(w) for w in batch))
            return
        data = self._encode("record_access_many", [w.access for w in batch])
        try:
            record = await self._account.send(GRANTS, data, gas=access_many_gas(len(batch)))
        except TxFailed as exc:
            if exc.reason != "reverted":
                for waiter in batch:
                    _settle(waiter, error=exc)
                return
            named = refused_item(str(exc), len(batch))
            if named is not None:
                refused = batch.pop(named[0])
                _settle(refused, error=TxFailed("reverted", named[1], exc.tx_hash))
            # the others (all of them, when no item was named), each on its own: they
            # settle in the next block whatever else is refused
            await asyncio.gather(*(self._send_one(w) for w in batch))
            return
        for waiter in batch:
            _settle(waiter, record=record)

    async def _send_one(self, waiter: _Waiter) -> None:
        try:
            record = await self._account.send(
                GRANTS, self._encode("record_access", *waiter.access))
        except TxFailed as exc:
            _settle(waiter, error=exc)
        else:
            _settle(waiter, record=record)


def _settle(waiter: _Waiter, *, record: TxRecord | None = None,
            error: BaseException | None = None) -> None:
    if waiter.future.done():
        return
    if error is not None:
        waiter.future.set_exception(error)
    else:
        waiter.future.set_result(record)  # type: ignore[arg-type]
