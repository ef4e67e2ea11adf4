"""``/v1/records``: publish (through the center's own node), list, fetch ciphertext, and
request a data key under a grant (served by the record's custodian node, forwarded there
from any other node)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi import Path as FPath
from pydantic import BaseModel, ConfigDict, Field

from yilian.api.auth import ApiError, CallerDep, RouteCheckedCallerDep, audience_error
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
from yilian.node.key_types import NotCustodian, Published, ServiceError
from yilian.node.node_api import NodeAPI
from yilian.protocol.publication import PublishedPublic

router = APIRouter(prefix="/v1/records", tags=["records"])


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
    enc_key: HeldEncKey = None


class KeyPublic(ReleasedKey):
    custodian: str


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
        with slots.slot(caller.address, operator=True):
            out = await service.publish(
                caller.address, body.type, body.subject, body.payload,
                client_id=body.client_id, owner=body.owner, version=body.version)
    except ServiceError as exc:
        raise service_error(exc) from None
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
        with slots.slot(caller.address, operator=True):
            out = await service.remove(caller.address, rid, body.version)
    except ServiceError as exc:
        raise service_error(exc) from None
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


@router.get("/{record_id}/versions/latest",
            summary="The latest version's ciphertext, digest and wrapped keys (as on chain)")
def get_latest_version(record_id: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    rid = parse_bytes32(record_id, "record_id")
    meta = node.domain.record(rid)
    if meta is None:
        raise ApiError("record_not_found", f"no record {record_id} on chain")
    return version_json(node, rid, meta.latest)


@router.get("/{record_id}/versions/{version}",
            summary="One version's ciphertext, digest and wrapped keys (as on chain)")
def get_version(record_id: str, version: Annotated[int, FPath(ge=1, le=UINT32_MAX)],
                node: NodeDep, _: CallerDep) -> dict[str, Any]:
    return version_json(node, parse_bytes32(record_id, "record_id"), version)


def version_json(node: NodeAPI, rid: bytes, version: int) -> dict[str, Any]:
    """One version as on chain (404 ``version_not_found``, 410 for a tombstone)."""
    record_id = hex0x(rid)
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


def custodian_answer(status: int, content: bytes, record_id: bytes
                     ) -> tuple[int, dict[str, Any]] | None:
    """The key-service answer in a custodian's response, as (status, JSON) to pass on, or
    None if it is none: only a 200 holding a key for ``record_id`` (KeyPublic, no other
    fields) or a 4xx/5xx ``{"error": {reason, message}}`` (other fields dropped)."""
    return key_service_answer(status, content, KeyPublic,
                              lambda key: key.record_id.lower() == hex0x(record_id))


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
        with slots.slot(caller.address, operator=True):  # waits for the custodian's answer
            return await forward(node, meta.center, path, caller.headers, caller.body,
                                 lambda status, content: custodian_answer(status, content, rid))
    request_id = None if body.request_id is None else bytes.fromhex(body.request_id[2:])
    try:
        with slots.slot(caller.address, by_address=not request.headers.get(FORWARDED_HEADER),
                        operator=True):
            out = await service.release_key(
                caller.address, caller.nonce, rid, body.grant_id, body.version, request_id,
                None if body.enc_key is None else bytes.fromhex(body.enc_key[2:]))
    except ServiceError as exc:
        raise service_error(exc) from None
    except NotCustodian:
        raise ApiError("not_custodian", "the record's custodian changed") from None
    return KeyPublic(**released_key(out).model_dump(), custodian=node.config.name)
