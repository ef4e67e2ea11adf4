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
from yilian.contracts.addresses import ROLE_ADMIN, ROLE_AUDITOR, ROLE_CENTER

router = APIRouter(tags=["receipts"])

AUDIT_ROLES = frozenset({ROLE_AUDITOR, ROLE_ADMIN, ROLE_CENTER})


def _subject_for(caller: Caller, subject: str) -> bytes:
    subject_id = member_id_of(subject)
    if caller.role not in AUDIT_ROLES and caller.member_id != subject_id:
        raise ApiError(403, "not_auditor", "only auditors, centers, the admin and the subject "
                       "itself may read a subject's history")
    return subject_id


@router.get("/v1/receipts", summary="Access receipts of a subject's records")
def list_receipts(subject: str, node: NodeDep, caller: CallerDep) -> list[dict[str, Any]]:
    subject_id = _subject_for(caller, subject)
    return [event_json(e) for e in node.domain.history(subject_id)
            if e.event.event == "AccessReceipt"]


@router.get("/v1/subjects/{subject}/history",
            summary="Every record version, removal, grant, revocation and read of a subject")
def history(subject: str, node: NodeDep, caller: CallerDep) -> list[dict[str, Any]]:
    subject_id = _subject_for(caller, subject)
    return [event_json(e) for e in node.domain.history(subject_id)]
