"""``/v1/grants``: an owner's grants to read its records, and their revocation.

Writes are Ethereum transactions the owner signs with its chain key (the SDK builds
them); the node checks that the transaction is the right call and the sender's role,
commits it and answers with the resulting grant, or the contract's reason for refusing.
Resending the same signed transaction never grants twice: it is answered with the
transaction's status (202 pending) or its committed grant (see ``api.waiting``).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from yilian.api.auth import ApiError, CallerDep
from yilian.api.deps import NodeDep
from yilian.api.domain_format import (
    UINT256_MAX,
    SignedTransaction,
    committed_json,
    event_json,
    member_id_of,
)
from yilian.api.json_bytes import hex0x
from yilian.api.privacy import NOT_PARTY, may_see_grant, visible_history
from yilian.api.waiting import (
    PENDING_RESPONSES,
    WaitsDep,
    commit_domain_tx,
    pending_response,
)
from yilian.node.domain import GRANTS, code_of
from yilian.node.node_api import NodeAPI
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import Pending

router = APIRouter(prefix="/v1/grants", tags=["grants"])
GrantId = Annotated[int, Path(ge=0, le=UINT256_MAX)]


def grant_json(node: NodeAPI, grant_id: int) -> dict[str, Any]:
    g = node.domain.grant(grant_id)
    if g is None:
        raise ApiError("grant_not_found", f"no grant {grant_id}")
    out: dict[str, Any] = {"grant_id": grant_id}
    for key, value in g.items():
        if key in ("owner", "grantee", "subject"):
            out[key] = code_of(value)
        elif isinstance(value, bytes):
            out[key] = hex0x(value)
        else:
            out[key] = value
    types = int(g.get("types", 0))
    out["type_list"] = [t for t in range(1, 8) if types >> t & 1]
    return out


def _granted(node: NodeAPI, record: TxRecord) -> dict[str, Any]:
    topic = node.domain.grants.topic("Granted")
    for log in record.receipt.logs:
        if log.topics and log.topics[0].to_bytes(32, "big") == topic:
            grant_id = log.topics[1]
            return {**grant_json(node, grant_id), **committed_json(record)}
    raise ApiError("no_event", "the grant committed without a Granted event")


@router.post("", summary="Commit a grant signed by the owner; returns the grant",
             response_model=None, responses=PENDING_RESPONSES)
async def create_grant(body: SignedTransaction, node: NodeDep, slots: WaitsDep
                       ) -> dict[str, Any] | JSONResponse:
    out = await commit_domain_tx(node, body.raw_transaction, GRANTS, slots,
                                 frozenset({"grant"}))
    if isinstance(out, Pending):
        return pending_response(out)
    return await anyio.to_thread.run_sync(_granted, node, out)


def _revoked(node: NodeAPI, grant_id: int, record: TxRecord) -> dict[str, Any]:
    return {**grant_json(node, grant_id), **committed_json(record)}


@router.post("/{grant_id}/revoke", summary="Commit a revocation signed by the owner",
             response_model=None, responses=PENDING_RESPONSES)
async def revoke_grant(grant_id: GrantId, body: SignedTransaction, node: NodeDep,
                       slots: WaitsDep) -> dict[str, Any] | JSONResponse:
    out = await commit_domain_tx(node, body.raw_transaction, GRANTS, slots,
                                 frozenset({"revoke"}), {"grant_id": grant_id})
    if isinstance(out, Pending):
        return pending_response(out)
    return await anyio.to_thread.run_sync(_revoked, node, grant_id, out)


@router.get("/{grant_id}", summary="One grant and its state (reads used, revoked, expiry)",
            description="Served to the grant's owner, grantee and subject, auditors and the "
            "custodian centers of the records it covers; others get 403 not_party.")
def get_grant(grant_id: GrantId, node: NodeDep, caller: CallerDep) -> dict[str, Any]:
    grant = node.domain.grant(grant_id)
    if grant is not None and not may_see_grant(node.domain, caller, grant):
        raise ApiError("not_party", f"grant {grant_id} is shown only to its owner, "
                       "grantee and subject, auditors and the custodian of its records")
    return grant_json(node, grant_id)


@router.get("", summary="Grants about a subject, with their events",
            description="The subject and auditors see all; a grantee the grants naming it; "
            "a center the grants covering records it keeps; others get 403 not_party.")
def list_grants(subject: str, node: NodeDep, caller: CallerDep) -> list[dict[str, Any]]:
    subject_id = member_id_of(subject)
    events = visible_history(node.domain, caller, subject_id)
    if events is None:
        raise ApiError("not_party", NOT_PARTY.format(code=subject, what="grants"))
    return [{**grant_json(node, int(located.event.args["grant_id"])),
             "granted": event_json(located)}
            for located in events if located.event.event == "Granted"]
