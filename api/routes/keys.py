"""``/v1/keys``: the data keys of several records of one custodian in one request, under
grants, with all their access receipts in one transaction (see
:mod:`yilian.node.key_batches`). Served by the custodian, forwarded there from any other
node, like a single key request (``/v1/records/{id}/key``)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from yilian.api.auth import ApiError, RouteCheckedCallerDep, audience_error
from yilian.api.custodian import (
    FORWARDED_HEADER,
    HeldEncKey,
    ReleasedKey,
    forward,
    key_service_answer,
    released_key,
    service_error,
)
from yilian.api.deps import NodeDep
from yilian.api.domain_format import UINT32_MAX, UINT256_MAX
from yilian.api.json_bytes import hex0x
from yilian.api.waiting import WaitsDep
from yilian.contracts.addresses import MAX_ACCESS_ITEMS
from yilian.node.domain import RecordMeta, code_of
from yilian.node.key_types import KeyItem, NotCustodian, ServiceError

router = APIRouter(prefix="/v1/keys", tags=["records"])

BYTES32 = r"^0x[0-9a-fA-F]{64}$"


class KeyItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    record_id: str = Field(pattern=BYTES32)
    grant_id: int = Field(ge=0, le=UINT256_MAX,
                          description="the grant this record is read under (0 for the "
                          "owner reading its own record)")
    version: int | None = Field(default=None, ge=1, le=UINT32_MAX,
                                description="the version to read; omit for the latest")


class KeysCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    items: list[KeyItemCreate] = Field(
        min_length=1, max_length=MAX_ACCESS_ITEMS,
        description=f"1 to {MAX_ACCESS_ITEMS} record versions, all of one custodian, each "
        "named once")
    request_id: str | None = Field(
        default=None, pattern=BYTES32,
        description="the caller's id for this batch of reads (32 bytes): retrying the same "
        "items with the same id returns the keys under the receipts already committed "
        "instead of spending more reads")
    enc_key: HeldEncKey = None


class KeysPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    custodian: str
    keys: list[ReleasedKey] = Field(description="one per item, in the request's order")


def keys_answer(status: int, content: bytes, items: list[KeyItem]
                ) -> tuple[int, dict[str, Any]] | None:
    """The key-service answer in a custodian's response to a batch, as (status, JSON) to
    pass on, or None: only a 200 with one key per item, in order, for exactly the records
    (and versions, where asked) of ``items`` (KeysPublic, no other fields), or a
    4xx/5xx error (reason and message)."""

    def fits(keys: KeysPublic) -> bool:
        return len(keys.keys) == len(items) and all(
            key.record_id.lower() == hex0x(item.record_id)
            and (item.version is None or key.version == item.version)
            for key, item in zip(keys.keys, items, strict=True))

    return key_service_answer(status, content, KeysPublic, fits)


def _custodian_of(metas: list[RecordMeta | None], items: list[KeyItem]) -> bytes:
    """The one custodian of all ``items``' records; the refusal otherwise."""
    for i, meta in enumerate(metas):
        if meta is None:
            rid = hex0x(items[i].record_id)
            raise ApiError("record_not_found", f"item {i}: no record {rid} on chain (yet)",
                           {"item": i, "record_id": rid})
    centers = sorted({m.center for m in metas if m is not None})
    if len(centers) > 1:
        raise ApiError("mixed_custodians", "the records have different custodians ("
                       f"{', '.join(map(code_of, centers))}); send one request per "
                       "custodian (the SDK's Grantee.read_many splits them)",
                       {"custodians": [code_of(c) for c in centers]})
    return centers[0]


@router.post("", response_model=KeysPublic,
             summary="Get the data keys of several records of one custodian, wrapped for the "
             "caller, under grants (one receipt transaction for all)")
async def request_keys(body: KeysCreate, node: NodeDep, caller: RouteCheckedCallerDep,
                       request: Request, slots: WaitsDep) -> Any:
    items = [KeyItem(bytes.fromhex(it.record_id[2:]), it.grant_id, it.version)
             for it in body.items]
    metas = await anyio.to_thread.run_sync(
        lambda: [node.domain.record(item.record_id) for item in items])
    center = _custodian_of(metas, items)
    # Like a single key request, a batch names the custodian, which alone serves it.
    wrong = audience_error(caller, code_of(center))
    if wrong is not None:
        raise wrong
    service = node.key_service
    forwarded = bool(request.headers.get(FORWARDED_HEADER))
    if service is None or center != await anyio.to_thread.run_sync(service.center_id):
        if forwarded:
            raise ApiError("not_custodian", "forwarded to a node that is not the custodian")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        with slots.slot(caller.address, operator=True):  # waits for the custodian's answer
            return await forward(node, center, path, caller.headers, caller.body,
                                 lambda status, content: keys_answer(status, content, items))
    request_id = None if body.request_id is None else bytes.fromhex(body.request_id[2:])
    try:
        with slots.slot(caller.address, by_address=not forwarded, operator=True):
            out = await service.release_keys(
                caller.address, caller.nonce, items, request_id,
                None if body.enc_key is None else bytes.fromhex(body.enc_key[2:]))
    except ServiceError as exc:
        raise service_error(exc) from None
    except NotCustodian:
        raise ApiError("not_custodian", "a record's custodian changed") from None
    return KeysPublic(custodian=node.config.name, keys=[released_key(k) for k in out])
