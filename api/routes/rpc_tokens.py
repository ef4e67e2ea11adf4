"""``/v1/auth``: a member obtains a JSON-RPC bearer token by signing a challenge.

The signed text is :func:`yilian.protocol.rpc_login.login_message`; the token and its
permissions are described in :mod:`yilian.node.rpc_tokens` and docs/rpc-auth.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from yilian.api.auth import ApiError
from yilian.api.deps import NodeDep, app_state
from yilian.api.rpc_auth import Challenges, member_access
from yilian.node.domain import code_of
from yilian.node.node_api import NodeAPI
from yilian.node.rpc_tokens import TokenKey, auth_required
from yilian.protocol.rpc_login import LoginError, login_message, recover_login

router = APIRouter(prefix="/v1/auth", tags=["rpc-auth"])
ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class ChallengeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    account: str = Field(pattern=ADDRESS, description="the member account that will sign")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    account: str = Field(pattern=ADDRESS)
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$", description="from /v1/auth/challenge")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$",
                           description="EIP-191 signature of the login text")
    ttl_s: int = Field(default=3600, ge=1, description="token lifetime asked for, seconds")


@router.post("/challenge", summary="A one-time challenge to sign for a JSON-RPC token")
def challenge(body: ChallengeRequest, request: Request, node: NodeDep) -> dict[str, Any]:
    nonce, expires = app_state(request, "challenges", Challenges).issue(body.account)
    key = app_state(request, "token_key", TokenKey)
    ttl = node.config.rpc_auth.token_ttl_s
    return {
        "nonce": nonce, "node": key.key_id, "chain_id": node.genesis.chain_id,
        "account": body.account, "expires": int(expires), "max_ttl_s": ttl,
        "rpc_auth_required": auth_required(node.config),
        "sign": login_message(chain_id=node.genesis.chain_id, node=key.key_id, nonce=nonce,
                              account=body.account, ttl_s=ttl).decode(),
    }


@router.post("/token", summary="A JSON-RPC bearer token for a signed challenge")
async def token(body: TokenRequest, request: Request, node: NodeDep) -> dict[str, Any]:
    key = app_state(request, "token_key", TokenKey)
    challenges = app_state(request, "challenges", Challenges)
    return await run_in_threadpool(_issue, body, key, challenges, node)


def _issue(body: TokenRequest, key: TokenKey, challenges: Challenges, node: NodeAPI
           ) -> dict[str, Any]:
    limit = node.config.rpc_auth.token_ttl_s
    if body.ttl_s > limit:
        raise ApiError("bad_request", f"ttl_s may be at most {limit} seconds at this node")
    try:
        account = recover_login(body.signature, chain_id=node.genesis.chain_id, node=key.key_id,
                                nonce=body.nonce, account=body.account, ttl_s=body.ttl_s)
    except LoginError as exc:
        raise ApiError("bad_signature", str(exc)) from None
    if not challenges.take(body.nonce, account):
        raise ApiError("bad_challenge", "this challenge is unknown, used, expired or "
                       "issued to another account; ask /v1/auth/challenge for a new one")
    found = member_access(node, bytes.fromhex(account[2:])) if node.domain.enabled else None
    if found is None:
        raise ApiError("not_member", f"{account} is not an account of an active member; "
                       "ask the consortium admin to register it")
    member_id, role = found
    token, claims = key.issue(subject=account, member=code_of(member_id), role=role,
                              ttl_s=body.ttl_s)
    return {"token": token, "token_type": "Bearer", "expires_at": claims.expires_at,
            "expires_in": body.ttl_s, "account": account, "member": claims.member,
            "role": role, "permissions": list(claims.permissions)}
