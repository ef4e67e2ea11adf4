"""Who may see which domain event: who reads whose records is itself private.

One rule serves the REST history, receipts and grants (``/v1``) and the JSON-RPC log
filter of member tokens (``yilian.api.rpc_permissions``):

* an auditor sees every event;
* the subject sees every event about itself (its records, grants and reads);
* any other member sees an event when it is a *party* of it: the event, or the grant it
  refers to, names the member as subject, owner, grantee, reader, center or custodian;
* a center is also a party of a grant (and its revocation) when it keeps a record the
  grant covers: the grant's one record, or a record of the subject of a covered type
  (the *custodian center of the records concerned*).

Everything else is refused (REST: 403 ``not_party``; JSON-RPC: left out of the results).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from yilian.contracts.abi import DecodedLog
from yilian.contracts.addresses import ROLE_AUDITOR, ROLE_CENTER
from yilian.node.domain import Located
from yilian.node.node_api import DomainReader

# Event arguments naming a member (bytes32 credit codes).
PARTY_FIELDS = ("subject", "owner", "grantee", "reader", "center", "custodian")
ZERO32 = b"\x00" * 32
NOT_PARTY = ("{code}'s {what} are shown only to the subject, auditors, the parties of each "
             "grant and the custodian centers of its records; this account's member is none")


class Viewer(Protocol):
    """The member asking, as far as visibility goes (an authenticated ``Caller``)."""

    @property
    def member_id(self) -> bytes: ...

    @property
    def role(self) -> int: ...


@dataclass
class Custody:
    """Which centers keep which records of one subject (from its RecordPublished events)."""

    by_type: dict[int, set[bytes]] = field(default_factory=dict)
    by_record: dict[bytes, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[Located]) -> Custody:
        out = cls()
        for e in events:
            if e.event.event == "RecordPublished":
                center = bytes(e.event.args["center"])
                out.by_type.setdefault(int(e.event.args["rtype"]), set()).add(center)
                out.by_record[bytes(e.event.args["record_id"])] = center
        return out

    def custodians(self, grant: dict[str, Any]) -> set[bytes]:
        record_id = bytes(grant.get("record_id", ZERO32))
        if record_id != ZERO32:
            center = self.by_record.get(record_id)
            return {center} if center is not None else set()
        types = int(grant.get("types", 0))
        return {c for t, centers in self.by_type.items() if types >> t & 1 for c in centers}


def grant_parties(grant: dict[str, Any] | None, custody: Custody | None = None) -> set[bytes]:
    if grant is None:
        return set()
    out = {bytes(grant[k]) for k in ("owner", "grantee", "subject") if k in grant}
    if custody is not None:
        out |= custody.custodians(grant)
    return out


def event_parties(domain: DomainReader, event: DecodedLog, custody: Custody | None = None
                  ) -> set[bytes]:
    """The members an event names, directly or through the grant it refers to."""
    out = {bytes(v) for k, v in event.args.items() if k in PARTY_FIELDS and isinstance(v, bytes)}
    grant_id = event.args.get("grant_id")
    if isinstance(grant_id, int) and not isinstance(grant_id, bool) and grant_id > 0:
        out |= grant_parties(domain.grant(grant_id), custody)
    out.discard(ZERO32)
    return out


def sees_everything(viewer: Viewer, subject_id: bytes) -> bool:
    return viewer.role == ROLE_AUDITOR or viewer.member_id == subject_id


def visible_history(domain: DomainReader, viewer: Viewer, subject_id: bytes
                    ) -> list[Located] | None:
    """The subject's events ``viewer`` may see, oldest first; None when it is no party at
    all (not the subject, not an auditor, named by no event)."""
    events = list(domain.history(subject_id))
    if sees_everything(viewer, subject_id):
        return events
    custody = Custody.of(events) if viewer.role == ROLE_CENTER else None
    mine = [e for e in events if viewer.member_id in event_parties(domain, e.event, custody)]
    return mine or None


def may_see_grant(domain: DomainReader, viewer: Viewer, grant: dict[str, Any]) -> bool:
    subject = bytes(grant["subject"])
    if sees_everything(viewer, subject):
        return True
    custody = Custody.of(domain.history(subject)) if viewer.role == ROLE_CENTER else None
    return viewer.member_id in grant_parties(grant, custody)
