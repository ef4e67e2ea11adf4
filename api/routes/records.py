"""``/v1/records``: publish (through the center's own node), list, fetch ciphertext, and
request a data key under a grant (served by the record's custodian node, forwarded there
from any other node)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
import httpx
from fastapi import APIRouter, Request
from fastapi import Path as FPath
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yilian.api.auth import ApiError, CallerDep, RouteCheckedCallerDep, audience_error
from yilian.api.deps import NodeDep
from yilian.api.domain_format import (
    UINT32_MAX,
    UINT256_MAX,
    event_json,
    member_id_of,
    parse_bytes32,
)
from yilian.api.json_bytes import hex0x
from yilian.api.waiting import WaitsDep
from yilian.contracts.addresses import RECORDS_ADDRESS
from yilian.node.domain import code_of
from yilian.node.key_service import NotCustodian, Published, ServiceError
from yilian.node.node_api import NodeAPI
from yilian.protocol.publication import PublishedPublic

router = APIRouter(prefix="/v1/records", tags=["records"])

FORWARDED_HEADER = "X-Yilian-Forwarded"
FORWARD_TIMEOUT_S = 45.0  # the custodian's own commit wait is 30 s
MAX_FORWARD_ANSWER = 1 << 20


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str | int = Field(description="record type: basic, qualification, performance, "
                            "personnel, credit, supervision, project (or 1..7)")
    subject: str = Field(description="the entity's unified social credit code")
    payload: dict[str, Any] = Field(description="the record, per the data standard")
    client_id: str = Field(min_length=1, max_length=128,
                           description="the caller's id for this record; retrying with the "
                           "same id never creates a duplicate")
    owner: Literal["subject", "center"] | None = None
    version: int | None = Field(default=None, ge=1, le=UINT32_MAX,
                                description="the version to publish (updates); omit for new")


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grant_id: int = Field(ge=0, le=UINT256_MAX,
                          description="the grant the read is made under (0 for the "
                          "owner reading its own record)")
    version: int | None = Field(default=None, ge=1, le=UINT32_MAX)
    request_id: str | None = Field(
        default=None, pattern=r"^0x[0-9a-fA-F]{64}$",
        description="the caller's id for this read (32 bytes): retrying with the same id "
        "after a failure returns the key under the receipt already committed instead of "
        "spending another read")


class KeyPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: str
    version: int
    wrapped_key: str
    receipt_tx: str | None
    receipt_block_number: int | None
    receipt_block_hash: str | None
    custodian: str


class _CustodianError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    reason: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    message: str = Field(max_length=4096)


class _CustodianRefusal(BaseModel):
    """A custodian's error answer: only the documented shape is passed on."""

    model_config = ConfigDict(extra="forbid")
    error: _CustodianError


def _service_error(exc: ServiceError) -> ApiError:
    return ApiError(exc.reason, str(exc), exc.extra)


def _published(out: Published) -> PublishedPublic:
    return PublishedPublic(record_id=hex0x(out.record_id), version=out.version,
                           digest=hex0x(out.digest), tx_hash=hex0x(out.tx_hash),
                           block_number=out.block_number, block_hash=hex0x(out.block_hash),
                           already_published=out.already)


@router.post("", response_model=PublishedPublic, summary="Publish a record (center staff, "
             "through their own center's node)")
async def publish(body: RecordCreate, node: NodeDep, caller: CallerDep, slots: WaitsDep
                  ) -> PublishedPublic:
    service = node.key_service
    if service is None:
        raise ApiError("no_key_service", "this node holds no center account; publish "
                       "through your center's node")
    try:
        with slots.slot(caller.address, center_operation=True):
            out = await service.publish(
                caller.address, body.type, body.subject, body.payload,
                client_id=body.client_id, owner=body.owner, version=body.version)
    except ServiceError as exc:
        raise _service_error(exc) from None
    return _published(out)


class RecordRemove(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int | None = Field(default=None, ge=1, le=UINT32_MAX,
                                description="the tombstone's version "
                                "(latest + 1); give it to make a retry idempotent")


@router.post("/{record_id}/remove", response_model=PublishedPublic,
             summary="Remove a record (a tombstone version; earlier versions stay on chain)")
async def remove(record_id: str, body: RecordRemove, node: NodeDep, caller: CallerDep,
                 slots: WaitsDep) -> PublishedPublic:
    service = node.key_service
    if service is None:
        raise ApiError("no_key_service", "this node holds no center account; remove "
                       "through the providing center's node")
    rid = parse_bytes32(record_id, "record_id")
    try:
        with slots.slot(caller.address, center_operation=True):
            out = await service.remove(caller.address, rid, body.version)
    except ServiceError as exc:
        raise _service_error(exc) from None
    return _published(out)


def record_json(node: NodeAPI, record_id: bytes) -> dict[str, Any]:
    meta = node.domain.record(record_id)
    if meta is None:
        raise ApiError("record_not_found", f"no record {hex0x(record_id)} on chain")
    versions = []
    for v in range(1, meta.latest + 1):
        located = node.domain.published(record_id, v)
        vm = node.domain.version(record_id, v)
        versions.append({
            "version": v, "digest": hex0x(vm.digest), "schema": vm.schema,
            "tombstone": vm.tombstone, "block_number": vm.block_number,
            "timestamp": vm.timestamp,
            "tx_hash": None if located is None else hex0x(located.tx_hash),
            "block_hash": None if located is None else hex0x(located.block_hash),
        })
    return {"record_id": hex0x(record_id), "type": meta.rtype, "subject": code_of(meta.subject),
            "center": code_of(meta.center), "owner": code_of(meta.owner), "latest": meta.latest,
            "removed": meta.removed, "versions": versions}


@router.get("", summary="Records about a subject, with every version")
def list_records(subject: str, node: NodeDep, _: CallerDep) -> list[dict[str, Any]]:
    subject_id = member_id_of(subject)
    seen: list[bytes] = []
    for located in node.domain.history(subject_id):
        if located.event.event == "RecordPublished":
            rid = bytes(located.event.args["record_id"])
            if rid not in seen:
                seen.append(rid)
    return [record_json(node, rid) for rid in seen]


@router.get("/{record_id}", summary="One record and its versions")
def get_record(record_id: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    return record_json(node, parse_bytes32(record_id, "record_id"))


@router.get("/{record_id}/versions/{version}",
            summary="One version's ciphertext, digest and wrapped keys (as on chain)")
def get_version(record_id: str, version: Annotated[int, FPath(ge=1, le=UINT32_MAX)],
                node: NodeDep, _: CallerDep) -> dict[str, Any]:
    rid = parse_bytes32(record_id, "record_id")
    meta = node.domain.record(rid)
    if meta is None or not 1 <= version <= meta.latest:
        raise ApiError("version_not_found", f"record {record_id} has no version {version}")
    located = node.domain.published(rid, version)
    vm = node.domain.version(rid, version)
    if located is None or located.event.event != "RecordPublished":
        raise ApiError("record_removed", f"version {version} is a removal (tombstone)")
    args = located.event.args
    return {
        "record_id": hex0x(rid), "version": version, "type": meta.rtype,
        "subject": code_of(meta.subject), "subject_id": hex0x(meta.subject),
        "owner": code_of(meta.owner), "owner_id": hex0x(meta.owner),
        "center": code_of(meta.center), "schema": vm.schema,
        "digest": hex0x(vm.digest), "event_digest": hex0x(args["digest"]),
        "ciphertext": hex0x(args["ciphertext"]), "wrapped_keys": hex0x(args["wrapped_keys"]),
        "chain_id": node.genesis.chain_id, "records_address": RECORDS_ADDRESS,
        "suite": node.genesis.suite, **event_json(located),
    }


# One forwarding client per event loop: connections to custodians are kept alive (and an
# httpx client is costly to create: it builds an SSL context).
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary())


async def _forward(node: NodeAPI, center: bytes, record_id: bytes, path: str,
                   caller_headers: dict[str, str], body: bytes) -> JSONResponse:
    """Send a key request on to the record's custodian and pass back only a key-service
    answer: a 200 with a key for this record (KeyPublic) or a 4xx/5xx error with a
    reason and a message. Redirects are not followed; anything else (a 3xx, another
    shape, extra fields, another record) is the custodian's fault: 502
    ``bad_custodian_answer``."""
    member = await anyio.to_thread.run_sync(node.domain.member, center)
    custodian = code_of(center)
    if member is None or not member.endpoint:
        raise ApiError("custodian_unavailable",
                       f"the record's custodian {custodian} has no registered endpoint")
    if not member.endpoint.startswith(("http://", "https://")):
        raise ApiError("custodian_unavailable", f"the custodian {custodian}'s registered "
                       f"endpoint {member.endpoint!r} is not an http(s) URL")
    loop = asyncio.get_running_loop()
    client = _CLIENTS.get(loop)
    if client is None:
        client = _CLIENTS[loop] = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S,
                                                    follow_redirects=False)
    try:
        resp = await client.post(
            member.endpoint.rstrip("/") + path, content=body, follow_redirects=False,
            headers={**caller_headers, FORWARDED_HEADER: "1",
                     "Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise ApiError("custodian_unavailable",
                       f"the record's custodian center {custodian} ({member.endpoint}) did not "
                       f"answer: {exc!r}. Only the custodian holds the record's data key: "
                       "retry when it is back, or ask the owner") from None
    answer = custodian_answer(resp.status_code, resp.content, record_id)
    if answer is None:
        raise ApiError("bad_custodian_answer", f"the custodian {custodian} answered HTTP "
                       f"{resp.status_code} with something other than a key-service answer; "
                       "nothing was passed on. Retry later, or report it to that center")
    return JSONResponse(answer[1], status_code=answer[0])


def custodian_answer(status: int, content: bytes, record_id: bytes
                     ) -> tuple[int, dict[str, Any]] | None:
    """The key-service answer in a custodian's response, as (status, JSON) to pass on, or
    None if it is none: only a 200 holding a key for ``record_id`` (KeyPublic, no other
    fields) or a 4xx/5xx ``{"error": {reason, message}}`` (other fields dropped)."""
    if len(content) > MAX_FORWARD_ANSWER:
        return None
    try:
        if status == 200:
            key = KeyPublic.model_validate_json(content)
            if key.record_id.lower() != hex0x(record_id):
                return None
            return 200, key.model_dump()
        if 400 <= status < 600:
            err = _CustodianRefusal.model_validate_json(content).error
            return status, {"error": {"reason": err.reason, "message": err.message}}
    except ValidationError:
        return None
    return None


@router.post("/{record_id}/key", response_model=KeyPublic,
             summary="Get the record's data key, wrapped for the caller, under a grant")
async def request_key(record_id: str, body: KeyRequest, node: NodeDep,
                      caller: RouteCheckedCallerDep, request: Request,
                      slots: WaitsDep) -> Any:
    rid = parse_bytes32(record_id, "record_id")
    service = node.key_service
    meta = await anyio.to_thread.run_sync(node.domain.record, rid)
    if meta is None:
        raise ApiError("record_not_found", f"no record {record_id} on chain (yet)")
    # A key request names the record's custodian, which alone serves it: here, or at the
    # custodian's node after forwarding (where it is checked again).
    wrong = audience_error(caller, code_of(meta.center))
    if wrong is not None:
        raise wrong
    if service is None or meta.center != await anyio.to_thread.run_sync(service.center_id):
        if request.headers.get(FORWARDED_HEADER):
            raise ApiError("not_custodian", "forwarded to a node that is not the "
                           "custodian")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        with slots.slot(caller.address):  # waits for the custodian's answer
            return await _forward(node, meta.center, rid, path, caller.headers, caller.body)
    request_id = None if body.request_id is None else bytes.fromhex(body.request_id[2:])
    try:
        with slots.slot(caller.address, by_address=not request.headers.get(FORWARDED_HEADER)):
            out = await service.release_key(
                caller.address, caller.nonce, rid, body.grant_id, body.version, request_id)
    except ServiceError as exc:
        raise _service_error(exc) from None
    except NotCustodian:
        raise ApiError("not_custodian", "the record's custodian changed") from None
    return KeyPublic(record_id=hex0x(out.record_id), version=out.version,
                     wrapped_key=hex0x(out.wrapped_key),
                     receipt_tx=None if out.receipt_tx is None else hex0x(out.receipt_tx),
                     receipt_block_number=out.block_number,
                     receipt_block_hash=None if out.block_hash is None else hex0x(out.block_hash),
                     custodian=node.config.name)
