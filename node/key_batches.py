"""Batched key release: one key request naming several records of one custodian.

A grantee reading N records of one custodian sends one request and waits for one block:
the custodian checks every item as it checks a single read
(:meth:`~yilian.node.key_service.KeyService.check_read`), records all their receipts in
ONE ``Grants.record_access_many`` transaction (one ``AccessReceipt`` per item, all or
nothing), and only after that commits re-wraps each data key for the reader.

Request ids, per batch. The batch id is ``B = keccak(BATCH_TAG || account || R)``, ``R``
the client's request id (or the signed request's nonce). The items that need a receipt
(all but the owner's reads of its own records, which need none, as in a single read) are
put in a canonical order, by (record id, version), and the item of rank ``k`` records its
receipt under the on-chain request id ``keccak(B || be16(k))``. The custodian looks up the
receipts of ranks ``0..n`` (``n`` such items; rank ``n`` is one past the last):

* none: a new read. Every item is checked against its grant, including the reads the
  whole batch spends on each grant, and one transaction is sent;
* ranks ``0..n-1`` each have a receipt for the item of that rank (record, version,
  reader, grant) and rank ``n`` none: a retry of the same batch (its answer was lost).
  Each item passes ``Grants.check_retry`` and ``RETRY_WINDOW_S``, and the same keys are
  released under the receipts on chain, spending nothing;
* anything else: ``request_id_used``, the id named another set of reads.

So per batch as per single read, a retry (the same items that need receipts, in any
order, with or without the owner's own) gets the same keys and never spends twice.
Batches and single reads never share on-chain ids (different tags): a retry must use the
same endpoint. A batch holds at most ``max_access_items`` receipts: 32 (the contract's
bound) on a network whose ``maxTxGas`` fits them, fewer on one that does not.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from eth_hash.auto import keccak

from yilian.contracts.addresses import MAX_ACCESS_ITEMS, access_many_gas, max_access_items
from yilian.node.center_account import CenterAccount
from yilian.node.domain import GRANTS, Located, RecordMeta
from yilian.node.genesis import Genesis
from yilian.node.interfaces import DomainReader
from yilian.node.key_types import (
    KeyItem,
    KeyRelease,
    ReadPlan,
    ReceiptRef,
    ServiceError,
    failure,
    refusal,
    refused_item,
)
from yilian.node.tx_outcome import TxFailed

BATCH_TAG = b"yilian-key-batch-v1"


class KeyService(Protocol):
    """What a batch uses of the key service (:class:`yilian.node.key_service.KeyService`):
    the single read's checks, its retry rule and its re-wrapping."""

    @property
    def genesis(self) -> Genesis: ...

    @property
    def domain(self) -> DomainReader: ...

    @property
    def account(self) -> CenterAccount: ...

    def check_read(self, reader: bytes, record_id: bytes, grant_id: int,
                   version: int | None, expect_enc_key: bytes | None = None) -> ReadPlan: ...

    def earlier_receipt(self, meta: RecordMeta, request_id: bytes, grant_id: int,
                        version: int, reader_id: bytes) -> Located | None: ...

    def rewrap(self, plan: ReadPlan) -> KeyRelease: ...


@dataclass(frozen=True)
class _Batch:
    """A checked batch: each item's plan (request order), the ranks, and the call."""

    items: tuple[KeyItem, ...]
    plans: tuple[ReadPlan, ...]
    order: tuple[int, ...]  # request indices of the items needing receipts, by rank
    batch: bytes  # the batch id
    call: bytes | None = None  # the record_access_many call to send, for a new read


def batch_id(account: bytes, request: bytes) -> bytes:
    """The id of the batch ``account`` named ``request`` (a client id or a nonce)."""
    return keccak(BATCH_TAG + account + request)


def item_request_id(batch: bytes, rank: int) -> bytes:
    """The on-chain request id of the item of ``rank`` (canonical order) in ``batch``."""
    return keccak(batch + rank.to_bytes(2, "big"))


def _item_error(exc: ServiceError, index: int, item: KeyItem) -> ServiceError:
    """``exc`` of the item at ``index`` (request order), naming it."""
    return ServiceError(exc.reason, f"item {index}: {exc}",
                        {**exc.extra, "item": index, "record_id": "0x" + item.record_id.hex()})


def plan_batch(service: KeyService, reader: bytes, nonce: str, items: Sequence[KeyItem],
               client_request_id: bytes | None, expect_enc_key: bytes | None = None
               ) -> _Batch:
    """Every check of a batch before its receipts are sent (see the module doc): the plans
    with their request ids, and either the earlier receipts (a retry) or the call."""
    limit = max_access_items(service.genesis.params.max_tx_gas)
    if not 1 <= len(items) <= MAX_ACCESS_ITEMS:
        raise ServiceError("too_many_items", f"a key request names 1 to {MAX_ACCESS_ITEMS} "
                           f"records, not {len(items)}; split it into several requests",
                           {"limit": limit})
    plans: list[ReadPlan] = []
    for i, item in enumerate(items):
        try:
            plans.append(service.check_read(reader, item.record_id, item.grant_id,
                                            item.version, expect_enc_key))
        except ServiceError as exc:
            raise _item_error(exc, i, item) from None
    first: dict[tuple[bytes, int], int] = {}
    for i, plan in enumerate(plans):
        key = (plan.meta.record_id, plan.version)
        if key in first:
            raise ServiceError("duplicate_item", f"items {first[key]} and {i} both ask for "
                               f"version {plan.version} of record 0x{key[0].hex()}; name "
                               "each record version once",
                               {"item": i, "record_id": "0x" + key[0].hex()})
        first[key] = i
    order = tuple(sorted((i for i, p in enumerate(plans) if p.needs_receipt),
                         key=lambda i: (plans[i].meta.record_id, plans[i].version)))
    if len(order) > limit:
        raise ServiceError("too_many_items", f"this network's maxTxGas "
                           f"({service.genesis.params.max_tx_gas}) fits the receipts of "
                           f"{limit} reads in one transaction, not {len(order)}; split the "
                           "request", {"limit": limit})
    batch = batch_id(reader, client_request_id or bytes.fromhex(nonce))
    for rank, i in enumerate(order):
        plans[i] = replace(plans[i], request_id=item_request_id(batch, rank))
    out = _Batch(tuple(items), tuple(plans), order, batch)
    if not order:
        return out
    seen = _receipts_seen(service, out)
    if seen == "none":
        return replace(out, call=_new_read_call(service, out))
    if seen == "all":
        return _with_earlier_receipts(service, out)
    raise _request_id_used()


def _request_id_used() -> ServiceError:
    return ServiceError("request_id_used", "this request id was already used for another "
                        "set of reads; use a fresh request id for a new read")


def _receipts_seen(service: KeyService, batch: _Batch) -> str:
    """Which of the batch's ranks have a receipt on chain: ``none``, ``all`` (each of
    ranks 0..n-1 and not rank n: a retry, if each is this batch's item) or ``some``."""
    domain = service.domain
    found = [domain.receipt_of_request(item_request_id(batch.batch, rank)) is not None
             for rank in range(len(batch.order) + 1)]
    if not any(found):
        return "none"
    return "all" if all(found[:-1]) and not found[-1] else "some"


def _new_read_call(service: KeyService, batch: _Batch) -> bytes:
    """The ``record_access_many`` call of a new batch, after checking each item's grant and
    that each grant has reads left for all of this batch's items on it."""
    domain = service.domain
    wanted: Counter[int] = Counter()
    for i, plan in enumerate(batch.plans):
        if not plan.needs_receipt:
            continue
        status = domain.check_grant(plan.grant_id, plan.meta.record_id, plan.reader_id)
        if status != 0:
            raise _item_error(refusal(status), i, batch.items[i])
        wanted[plan.grant_id] += 1
        grant = domain.grant(plan.grant_id)
        assert grant is not None  # check_grant answered 0
        left = int(grant["max_reads"]) - int(grant["reads"])
        if wanted[plan.grant_id] > left:
            exc = ServiceError("grant_exhausted", f"read refused: grant {plan.grant_id} has "
                               f"{left} read(s) left, fewer than this request's items on it; "
                               "ask for fewer records or for a new grant")
            raise _item_error(exc, i, batch.items[i])
    access = [(p.grant_id, p.meta.record_id, p.version, p.reader_id, p.request_id)
              for p in (batch.plans[i] for i in batch.order)]
    return domain.grants.encode_call("record_access_many", access)


def _with_earlier_receipts(service: KeyService, batch: _Batch) -> _Batch:
    """The batch with each item's committed receipt, each checked as a retry
    (KeyService.earlier_receipt: this item's, the grant still allows it, recent)."""
    plans = list(batch.plans)
    for i in batch.order:
        plan = plans[i]
        assert plan.request_id is not None
        try:
            receipt = service.earlier_receipt(plan.meta, plan.request_id, plan.grant_id,
                                              plan.version, plan.reader_id)
        except ServiceError as exc:
            raise _item_error(exc, i, batch.items[i]) from None
        if receipt is None:  # _receipts_seen found it: an index that lost an entry
            raise ServiceError("receipt_missing", f"item {i}'s receipt is not indexed")
        plans[i] = replace(plan, receipt=ReceiptRef.of(receipt))
    return replace(batch, plans=tuple(plans), call=None)


def _refused(service: KeyService, batch: _Batch, exc: TxFailed) -> _Batch:
    """The batch's transaction failed: an identical batch may have committed first (its
    receipts are the answer); otherwise the item that was refused, and why. The revert
    reason comes from a replay on the parent block, so when a batch lost a race within
    its block (another request spent the reads) the reason may name no item: the grant
    checks are then run again, as for a new read."""
    if exc.reason != "reverted":
        raise failure(exc, "the access receipts") from None
    seen = _receipts_seen(service, batch)
    if seen == "all":
        return _with_earlier_receipts(service, batch)
    if seen == "some":
        raise _request_id_used() from None
    _new_read_call(service, batch)  # raises the item a grant now refuses, if any
    named = refused_item(str(exc), len(batch.order))
    if named is None:
        raise ServiceError("refused", f"read refused: {exc}") from None
    i, why = batch.order[named[0]], named[1]
    if why == "request already used":
        raise _item_error(_request_id_used(), i, batch.items[i]) from None
    raise _item_error(ServiceError("refused", f"read refused: {why}"), i,
                      batch.items[i]) from None


async def release_keys(service: KeyService, reader: bytes, nonce: str,
                       items: Sequence[KeyItem], client_request_id: bytes | None = None,
                       expect_enc_key: bytes | None = None) -> list[KeyRelease]:
    """The data keys of ``items`` (request order), each wrapped for ``reader``, after one
    transaction recorded all their receipts (or under an earlier attempt's receipts).
    Waiting for the commit holds no thread."""
    batch = await asyncio.to_thread(plan_batch, service, reader, nonce, items,
                                    client_request_id, expect_enc_key)
    if batch.call is not None:
        try:
            record = await service.account.send(GRANTS, batch.call,
                                                gas=access_many_gas(len(batch.order)))
        except TxFailed as exc:
            batch = await asyncio.to_thread(_refused, service, batch, exc)
        else:  # committed with status 1: all or nothing, so every item's receipt is in it
            where = ReceiptRef(bytes(record.tx.hash), record.block_number, record.block_hash)
            batch = replace(batch, plans=tuple(
                replace(p, receipt=where) if p.needs_receipt else p for p in batch.plans))
    done = batch
    return await asyncio.to_thread(lambda: [service.rewrap(p) for p in done.plans])
