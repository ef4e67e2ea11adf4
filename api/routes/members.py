"""``/v1/members``: the consortium's member registry (read), and admin additions."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from yilian.api.auth import ApiError, CallerDep
from yilian.api.deps import NodeDep
from yilian.api.domain_format import (
    SignedTransaction,
    committed_json,
    member_id_of,
)
from yilian.api.json_bytes import hex0x
from yilian.api.waiting import (
    PENDING_RESPONSES,
    WaitsDep,
    commit_domain_tx,
    pending_response,
)
from yilian.contracts.addresses import ROLE_NAMES
from yilian.node.domain import MEMBERS, code_of
from yilian.node.tx_outcome import Pending

router = APIRouter(prefix="/v1/members", tags=["members"])


def member_json(node: Any, member_id: bytes) -> dict[str, Any]:
    m = node.domain.member(member_id)
    if m is None:
        raise ApiError("member_not_found", f"no member {code_of(member_id)}")
    return {"id": code_of(m.id), "role": ROLE_NAMES.get(m.role, str(m.role)), "name": m.name,
            "enc_key": hex0x(m.enc_key), "endpoint": m.endpoint, "active": m.active}


@router.get("/{code}", summary="One member: role, name, encryption key, endpoint")
def get_member(code: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    return member_json(node, member_id_of(code))


@router.get("/by-account/{account}", summary="The member an account belongs to")
def member_of(account: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", account):
        raise ApiError("bad_request", "account must be a 0x address (40 hex digits)")
    member_id = node.domain.member_of(bytes.fromhex(account[2:]))
    if not any(member_id):
        raise ApiError("member_not_found", f"{account} belongs to no member")
    return member_json(node, member_id)


@router.post("", summary="Commit an admin's signed Members transaction (add a member or "
             "account, or change a member's status)", response_model=None,
             responses=PENDING_RESPONSES)
async def admin_change(body: SignedTransaction, node: NodeDep, slots: WaitsDep
                       ) -> dict[str, Any] | JSONResponse:
    out = await commit_domain_tx(node, body.raw_transaction, MEMBERS, slots)
    return pending_response(out) if isinstance(out, Pending) else committed_json(out)
