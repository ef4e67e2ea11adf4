"""``/v1/members``: the consortium's member registry (read), and admin additions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from yilian.api.auth import ApiError, CallerDep
from yilian.api.deps import NodeDep
from yilian.api.domain_format import hex0x
from yilian.contracts.addresses import ROLE_NAMES
from yilian.contracts.credit_code import CreditCodeError
from yilian.contracts.credit_code import to_bytes32 as code_to_id
from yilian.node.center_account import TxFailed, wait_committed
from yilian.node.domain import MEMBERS, code_of
from yilian.node.mempool import Rejected, decode_transaction

router = APIRouter(prefix="/v1/members", tags=["members"])


class MemberTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    raw_transaction: str = Field(pattern=r"^0x[0-9a-fA-F]+$",
                                 description="the admin's signed Members transaction")


def member_json(node: Any, member_id: bytes) -> dict[str, Any]:
    m = node.domain.member(member_id)
    if m is None:
        raise ApiError(404, "member_not_found", f"no member {code_of(member_id)}")
    return {"id": code_of(m.id), "role": ROLE_NAMES.get(m.role, str(m.role)), "name": m.name,
            "enc_key": hex0x(m.enc_key), "endpoint": m.endpoint, "active": m.active}


@router.get("/{code}", summary="One member: role, name, encryption key, endpoint")
def get_member(code: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    try:
        return member_json(node, code_to_id(code))
    except CreditCodeError as exc:
        raise ApiError(422, "invalid_credit_code", str(exc)) from None


@router.get("/by-account/{account}", summary="The member an account belongs to")
def member_of(account: str, node: NodeDep, _: CallerDep) -> dict[str, Any]:
    if not (account.startswith("0x") and len(account) == 42):
        raise ApiError(422, "bad_request", "account must be a 0x address")
    member_id = node.domain.member_of(bytes.fromhex(account[2:]))
    if not any(member_id):
        raise ApiError(404, "member_not_found", f"{account} belongs to no member")
    return member_json(node, member_id)


@router.post("", summary="Commit an admin's signed Members transaction (add a member or "
             "account, or change a member's status)")
def admin_change(body: MemberTransaction, node: NodeDep) -> dict[str, Any]:
    raw = bytes.fromhex(body.raw_transaction[2:])
    try:
        tx = decode_transaction(raw, chain_id=node.genesis.chain_id,
                                max_bytes=node.config.mempool.max_tx_bytes)
        if bytes(tx.to) != MEMBERS:
            raise ApiError(422, "bad_call", "the transaction is not addressed to Members")
        tx_hash = node.submit(raw)
    except Rejected as exc:
        raise ApiError(403 if exc.reason == "role" else 422, exc.reason, str(exc)) from None
    try:
        record = wait_committed(node, tx_hash, 30.0)
    except TxFailed as exc:
        raise ApiError(409 if exc.reason == "reverted" else 504, exc.reason, str(exc)) from None
    return {"tx_hash": hex0x(record.tx.hash), "block_number": record.block_number,
            "block_hash": hex0x(record.block_hash)}
