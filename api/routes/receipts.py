"""``/v1/receipts`` and ``/v1/subjects/{code}/history``: what an auditor traces.

Every entry names its block number and hash, transaction hash and log index, so each
can be checked against the chain (``eth_getTransactionReceipt``) and the block's commit
certificate (``yilian_getCommitCertificate``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from yilian.api.auth import ApiError, Caller, CallerDep
from yilian.api.deps import NodeDep
from yilian.api.domain_format import event_json, member_id_of
from yilian.api.privacy import NOT_PARTY, visible_history
from yilian.node.domain import Located
from yilian.node.node_api import NodeAPI

router = APIRouter(tags=["receipts"])


def _visible(caller: Caller, subject: str, node: NodeAPI, what: str) -> list[Located]:
    events = visible_history(node.domain, caller, member_id_of(subject))
    if events is None:
        raise ApiError("not_party", NOT_PARTY.format(code=subject, what=what))
    return events


@router.get("/v1/receipts", summary="Access receipts of a subject's records",
            description="The subject and auditors see all; a grantee the reads under its "
            "grants; a center the reads of records it keeps; others get 403 not_party.")
def list_receipts(subject: str, node: NodeDep, caller: CallerDep) -> list[dict[str, Any]]:
    return [event_json(e) for e in _visible(caller, subject, node, "access receipts")
            if e.event.event == "AccessReceipt"]


@router.get("/v1/subjects/{subject}/history",
            summary="Every record version, removal, grant, revocation and read of a subject",
            description="Filtered to what the caller is a party of (docs/rpc-auth.md); the "
            "subject and auditors see all; others get 403 not_party.")
def history(subject: str, node: NodeDep, caller: CallerDep) -> list[dict[str, Any]]:
    return [event_json(e) for e in _visible(caller, subject, node, "history")]
