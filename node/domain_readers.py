"""The domain contracts' views, answered from their storage without the interpreter.

Each reader reads the words a view would read, from a :class:`~yilian.node.head_state.HeadState`,
at the slots the compiler's own layout gives (:mod:`yilian.contracts.layout`, stored in the
artifacts): nothing here copies a slot number or a struct offset. What the views *compute*
from those words (unpacking the ``meta`` words, the grant status and the grant refusal) is
ported line by line from the Vyper sources named at each function, with the bit positions the
artifacts' constants give where the contract names them.

Invariant: every answer equals the contract's own view run through the EVM on the same state
(``tests/test_domain_readers.py`` drives random transaction sequences and compares every
view, and fails for a view that has no reader here).

Time: py-evm runs a view on the head in a block it would build next, whose
``block.timestamp`` is the later of the head's timestamp + 1 and the wall clock
(``eth._utils.headers.new_timestamp_from_parent``); :func:`view_time` computes that time,
and the readers that depend on it take it as an argument, so they read no clock.

Known difference: a stored ``String`` that is not UTF-8 (only a raw transaction could store
one) reads with replacement characters here, where decoding the EVM's answer fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from yilian.contracts import artifacts
from yilian.contracts.layout import (
    LayoutError,
    StorageLayout,
    StorageType,
    key_word,
    map_slot,
)

ZERO32 = bytes(32)
CODE_LEN = 18


class Storage(Protocol):
    """Contract storage as words: :class:`~yilian.node.head_state.HeadState` at a head
    block, or a computation's storage (:mod:`yilian.node.native_grants`)."""

    def word(self, address: bytes, slot: int) -> int: ...

    def bytestring(self, address: bytes, slot: int, max_length: int) -> bytes: ...


@dataclass(frozen=True)
class _Map:
    """A storage HashMap: its slot, and the types of its keys (outer first) and value."""

    slot: int
    keys: tuple[StorageType, ...]
    value: StorageType

    def at(self, *keys: Any) -> int:
        slot = self.slot
        for key_type, key in zip(self.keys, keys, strict=True):
            slot = map_slot(slot, key_word(key_type, key))
        return slot


def _map(layout: StorageLayout, name: str) -> _Map:
    var = layout.var(name)
    typ, keys = var.type, []
    while typ.kind == "hashmap":
        assert typ.key is not None and typ.value is not None
        keys.append(typ.key)
        typ = typ.value
    if not keys:
        raise LayoutError(f"{layout.contract}.{name} is not a HashMap")
    return _Map(var.slot, tuple(keys), typ)


def read(state: Storage, address: bytes, slot: int, typ: StorageType) -> Any:
    """The value of type ``typ`` stored from ``slot``, as eth_abi would decode it from the
    view's answer (a struct as a dict of its members)."""
    if typ.kind == "struct":
        return {m.name: read(state, address, slot + m.offset, m.type) for m in typ.members}
    if typ.kind == "bytes":
        return state.bytestring(address, slot, typ.length)
    if typ.kind == "string":
        return state.bytestring(address, slot, typ.length).decode("utf-8", "replace")
    if typ.kind != "value":
        raise LayoutError(f"reading a {typ.type} is not supported")
    word = state.word(address, slot)
    name = typ.type
    if name == "bool":
        return word != 0
    if name == "address":
        return word.to_bytes(32, "big")[12:]
    if name.startswith("bytes"):
        return word.to_bytes(32, "big")[: int(name[5:])]
    if name.startswith("uint"):
        return word
    if name.startswith("int"):  # stored sign-extended to 256 bits
        return word - (1 << 256) if word >> 255 else word
    raise LayoutError(f"reading a {name} is not supported")


def view_time(head_timestamp: int, now: float) -> int:
    """The ``block.timestamp`` a view on the head sees at wall-clock time ``now``."""
    return max(head_timestamp + 1, int(now))


def _field(state: Storage, address: bytes, base: int, struct: StorageType, name: str) -> Any:
    member = struct.member(name)
    return read(state, address, base + member.offset, member.type)


def _code(member_id: bytes) -> bytes:
    """Grants.vy ``_code``: the first 18 bytes of an id, as the String the contract makes."""
    return bytes(member_id[:CODE_LEN])


class DomainReaders:
    """Readers for the Members, Records and Grants contracts at the given addresses."""

    def __init__(self, members: bytes, records: bytes, grants: bytes) -> None:
        self.members_address, self.records_address, self.grants_address = (
            members, records, grants)
        m = artifacts.load("Members").storage
        r = artifacts.load("Records").storage
        g = artifacts.load("Grants").storage
        self._members = _map(m, "members")
        self._account_member = _map(m, "account_member")
        self._member_count = m.var("member_count").slot
        self._records = _map(r, "records")
        self._versions = _map(r, "versions")
        self._owned_types = _map(r, "owned_types")
        self._record_count = r.var("record_count").slot
        self._grants = _map(g, "grants")
        self._used_requests = _map(g, "used_requests")
        self._grant_count = g.var("grant_count").slot
        self._removed = int(r.constant("REMOVED"))
        self._center_owns = int(r.constant("CENTER_OWNS"))
        self._mask16 = int(r.constant("MASK16"))
        self._mask32 = int(r.constant("MASK32"))
        self._mask64 = int(r.constant("MASK64"))
        bit = {name: int(g.constant(name)) for name in (
            "EXPIRY_AT", "MAX_READS_AT", "READS_AT", "REVOKED_AT", "CREATED_AT", "TYPES_AT")}
        self._bit = bit
        self._subject_types = int(g.constant("SUBJECT_TYPES"))
        self._status = {name: int(g.constant(name)) for name in (
            "OK", "NO_GRANT", "REVOKED", "EXPIRED", "NO_READS_LEFT", "NOT_COVERED",
            "NOT_GRANTEE", "GRANTEE_INACTIVE", "OWNER_INACTIVE")}

    # -- Members.vy ---------------------------------------------------------------------------
    def member_of(self, s: Storage, account: bytes) -> bytes:
        """``member_of``: the member ``account`` acts for (zero if none)."""
        return bytes(read(s, self.members_address, self._account_member.at(account),
                          self._account_member.value))

    def member_role(self, s: Storage, member_id: bytes) -> int:
        """``member_role`` (``_active_role``): the role if active, else 0."""
        base, struct = self._members.at(member_id), self._members.value
        if not _field(s, self.members_address, base, struct, "active"):
            return 0
        return int(_field(s, self.members_address, base, struct, "role"))

    def account_info(self, s: Storage, account: bytes) -> tuple[bytes, int]:
        member = self.member_of(s, account)
        return member, self.member_role(s, member)

    def role_of(self, s: Storage, account: bytes) -> int:
        return self.member_role(s, self.member_of(s, account))

    def is_active(self, s: Storage, member_id: bytes) -> bool:
        return bool(_field(s, self.members_address, self._members.at(member_id),
                           self._members.value, "active"))

    def get_member(self, s: Storage, member_id: bytes) -> dict[str, Any]:
        return dict(read(s, self.members_address, self._members.at(member_id),
                         self._members.value))

    def member_count(self, s: Storage) -> int:
        return s.word(self.members_address, self._member_count)

    # -- Records.vy ---------------------------------------------------------------------------
    def get_record(self, s: Storage, record_id: bytes) -> dict[str, Any]:
        """``get_record``: the stored record unpacked (``_owner`` by ``CENTER_OWNS``)."""
        stored = read(s, self.records_address, self._records.at(record_id), self._records.value)
        meta = int(stored["meta"])
        subject, center = bytes(stored["subject"]), bytes(stored["center"])
        return {
            "rtype": meta & 255,
            "subject": subject,
            "center": center,
            "owner": center if meta & self._center_owns else subject,
            "latest": (meta >> 8) & self._mask32,
            "removed": meta & self._removed != 0,
        }

    def get_version(self, s: Storage, record_id: bytes, version: int) -> dict[str, Any]:
        stored = read(s, self.records_address, self._versions.at(record_id, version),
                      self._versions.value)
        meta = int(stored["meta"])
        return {
            "digest": bytes(stored["digest"]),
            "schema": meta & self._mask16,
            "block_number": (meta >> 16) & self._mask64,
            "timestamp": (meta >> 80) & self._mask64,
            "tombstone": (meta >> 144) & 1 == 1,
        }

    def owned_types(self, s: Storage, owner: bytes, subject: bytes) -> int:
        return int(read(s, self.records_address, self._owned_types.at(owner, subject),
                        self._owned_types.value))

    def record_count(self, s: Storage) -> int:
        return s.word(self.records_address, self._record_count)

    # -- Grants.vy ----------------------------------------------------------------------------
    def _stored_grant(self, s: Storage, grant_id: int, name: str) -> Any:
        return _field(s, self.grants_address, self._grants.at(grant_id), self._grants.value,
                      name)

    def get_grant(self, s: Storage, grant_id: int) -> dict[str, Any]:
        stored = read(s, self.grants_address, self._grants.at(grant_id), self._grants.value)
        meta, bit = int(stored["meta"]), self._bit
        return {
            "owner": bytes(stored["owner"]),
            "grantee": bytes(stored["grantee"]),
            "subject": bytes(stored["subject"]),
            "types": (meta >> bit["TYPES_AT"]) & 255,
            "record_id": bytes(stored["record_id"]),
            "purpose": str(stored["purpose"]),
            "expiry": (meta >> bit["EXPIRY_AT"]) & self._mask64,
            "max_reads": (meta >> bit["MAX_READS_AT"]) & self._mask32,
            "reads": (meta >> bit["READS_AT"]) & self._mask32,
            "revoked": (meta >> bit["REVOKED_AT"]) & 1 == 1,
            "created": (meta >> bit["CREATED_AT"]) & self._mask64,
        }

    def grant_count(self, s: Storage) -> int:
        return s.word(self.grants_address, self._grant_count)

    def status_code(self, name: str) -> int:
        """The value of ``Grants``' status constant ``name`` (``OK``, ``NO_GRANT``, ...)."""
        return self._status[name]

    def used_request_slot(self, request_id: bytes) -> int:
        """The storage slot of ``used_requests[request_id]``."""
        return self._used_requests.at(request_id)

    def grant_meta_slot(self, grant_id: int) -> int:
        """The storage slot of ``grants[grant_id].meta``."""
        return self._grants.at(grant_id) + self._grants.value.member("meta").offset

    @property
    def one_read(self) -> int:
        """What one counted read adds to a grant's ``meta``: ``1 << READS_AT``."""
        return 1 << self._bit["READS_AT"]

    def used_requests(self, s: Storage, request_id: bytes) -> bool:
        return bool(read(s, self.grants_address, self._used_requests.at(request_id),
                         self._used_requests.value))

    def check(self, s: Storage, grant_id: int, record_id: bytes, reader: bytes, *,
              now: int, count_reads: bool = True) -> int:
        """``check`` (``check_retry`` without ``count_reads``) at view time ``now``
        (:func:`view_time`): a port of ``_status``."""
        st, bit = self._status, self._bit
        owner = bytes(self._stored_grant(s, grant_id, "owner"))
        if owner == ZERO32:
            return st["NO_GRANT"]
        meta = int(self._stored_grant(s, grant_id, "meta"))
        if (meta >> bit["REVOKED_AT"]) & 1 == 1:
            return st["REVOKED"]
        if now >= (meta >> bit["EXPIRY_AT"]) & self._mask64:
            return st["EXPIRED"]
        if count_reads and ((meta >> bit["READS_AT"]) & self._mask32
                            >= (meta >> bit["MAX_READS_AT"]) & self._mask32):
            return st["NO_READS_LEFT"]
        rec = self.get_record(s, record_id)
        if rec["latest"] == 0 or rec["removed"]:
            return st["NOT_COVERED"]
        if rec["subject"] != bytes(self._stored_grant(s, grant_id, "subject")) \
                or rec["owner"] != owner:
            return st["NOT_COVERED"]
        scoped = bytes(self._stored_grant(s, grant_id, "record_id"))
        if scoped != ZERO32:
            if scoped != record_id:
                return st["NOT_COVERED"]
        elif (meta >> bit["TYPES_AT"]) & (1 << rec["rtype"]) == 0:
            return st["NOT_COVERED"]
        if reader != bytes(self._stored_grant(s, grant_id, "grantee")):
            return st["NOT_GRANTEE"]
        if self.member_role(s, reader) == 0:
            return st["GRANTEE_INACTIVE"]
        if self.member_role(s, owner) == 0:
            return st["OWNER_INACTIVE"]
        return st["OK"]

    def grant_refusal(self, s: Storage, granter: bytes, subject: bytes, types: int,
                      record_id: bytes) -> str:
        """``grant_refusal``: a port of ``_refusal``, the same words."""
        text: bytes
        if record_id == ZERO32:
            owned = self.owned_types(s, granter, subject)
            if granter == subject:
                owned |= self._subject_types
            missing = types & ~owned
            if missing & self._subject_types:
                text = (b"only the subject " + _code(subject) + b" may grant its basic, "
                        b"qualification, performance and personnel records by type; ask it "
                        b"for the grant")
            elif missing:
                text = (_code(granter) + b" owns no records of " + _code(subject)
                        + b" of the types asked for: its credit, supervision and project "
                        b"records are owned by the center that provides them, which grants "
                        b"them")
            else:
                text = b""
            return text.decode("utf-8", "replace")
        rec = self.get_record(s, record_id)
        if rec["latest"] == 0:
            text = b"no such record: a record grant needs a published record"
        elif rec["removed"]:
            text = b"the record was removed"
        elif rec["subject"] != subject:
            text = b"the record is about " + _code(rec["subject"]) + b", not the grant's subject"
        elif rec["owner"] != granter:
            text = b"only the record's owner " + _code(rec["owner"]) + b" may grant access to it"
        else:
            text = b""
        return text.decode("utf-8", "replace")
