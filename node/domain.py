"""The node's view of the domain contracts: members, records, grants and their history.

Reads run the contracts' view functions on committed state (never on a block being
built). Admission checks turn a domain transaction the sender may not submit into a
:class:`~yilian.node.mempool.Rejected` with a reason, *before* the mempool: the contracts
enforce the same rules again on execution, so a check that raced with a role change can
only produce a reverted transaction, never a wrong state.

The history index is written in the same atomic batch as the block that emitted the
events (see :meth:`Domain.index_writes`), so after a crash it is exactly as complete as
the chain. Keys (under the ``i`` table; the prefixes are named in :mod:`yilian.node.storage`):

* ``ds`` + subject(32) + block(8) + log index in block(4) -> tx hash(32) + log index in
  its receipt(4): every event about a subject;
* ``dr`` + record id(32) + version(4) -> block(8) + log index in block(4) + tx hash(32) +
  log index in receipt(4): where a version was published (or removed);
* ``dq`` + request id(32) -> the same location: the access receipt written for a key request.

A located event is read back through the transaction index (one LevelDB read), never by
re-reading its whole block.

Views on the head are answered by :mod:`yilian.node.domain_readers` from the contracts'
storage, with no interpreter (microseconds instead of milliseconds). ``YILIAN_VIEWS=evm``
(or ``Domain(core, views="evm")``) runs them through the EVM instead, the contracts' own
code: the readers' test oracle and the benchmarks' baseline. EVM view calls on the head are
cached per head block (a block changes nothing until the next one commits).
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth_utils import to_canonical_address, to_checksum_address

from yilian.contracts.abi import AbiError, ContractAbi, DecodedLog, contract_abi, revert_reason
from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    MEMBERS_ADDRESS,
    RECORDS_ADDRESS,
    ROLE_ADMIN,
    ROLE_CENTER,
    ROLE_NAMES,
)
from yilian.node.admission import Rejected, Standing
from yilian.node.chain import ChainCore
from yilian.node.domain_readers import DomainReaders, view_time
from yilian.node.head_state import HeadState
from yilian.node.storage import INDEX, RECORD_EVENT, REQUEST_EVENT, SUBJECT_EVENT
from yilian.protocol.record_ids import in_namespace

MEMBERS = bytes(to_canonical_address(MEMBERS_ADDRESS))
RECORDS = bytes(to_canonical_address(RECORDS_ADDRESS))
GRANTS = bytes(to_canonical_address(GRANTS_ADDRESS))
CONTRACT_NAMES = {MEMBERS: "Members", RECORDS: "Records", GRANTS: "Grants"}

_CALL_GAS = 50_000_000
_CACHE_ENTRIES = 4096
VIEWS_ENV = "YILIAN_VIEWS"
VIEW_MODES = ("reader", "evm")


def views_mode(value: str | None = None) -> str:
    """How :class:`Domain` answers views: ``reader`` (default) or ``evm``; ``value`` or else
    the ``YILIAN_VIEWS`` environment variable."""
    mode = (value if value is not None else os.environ.get(VIEWS_ENV, "")).strip() or "reader"
    if mode not in VIEW_MODES:
        raise ValueError(f"{VIEWS_ENV}={mode!r}: use 'reader' (the default: views read the "
                         "contracts' storage) or 'evm' (views run in the interpreter)")
    return mode

# Which roles may call each state-changing domain function. Views are free for everyone.
ALLOWED_ROLES: dict[tuple[bytes, str], frozenset[int]] = {
    (MEMBERS, "add_member"): frozenset({ROLE_ADMIN}),
    (MEMBERS, "add_account"): frozenset({ROLE_ADMIN}),
    (MEMBERS, "set_active"): frozenset({ROLE_ADMIN}),
    (RECORDS, "publish"): frozenset({ROLE_CENTER}),
    (RECORDS, "remove"): frozenset({ROLE_CENTER}),
    # Any member may grant, but only what it owns: see check_grant_call.
    (GRANTS, "grant"): frozenset(ROLE_NAMES),
    (GRANTS, "revoke"): frozenset(ROLE_NAMES),
    (GRANTS, "record_access"): frozenset({ROLE_CENTER}),
    (GRANTS, "record_access_many"): frozenset({ROLE_CENTER}),
}

GRANT_STATUS = {
    0: ("ok", "the grant covers this read"),
    1: ("grant_not_found", "no such grant"),
    2: ("grant_revoked", "the owner revoked this grant"),
    3: ("grant_expired", "the grant has expired"),
    4: ("grant_exhausted", "the grant has no reads left"),
    5: ("not_covered", "the grant does not cover this record"),
    6: ("not_grantee", "the caller is not the grantee of this grant"),
    7: ("grantee_inactive", "the grantee's membership is suspended"),
    8: ("owner_inactive", "the grant's owner's membership is suspended (its grants pause "
        "until it is reactivated)"),
}


def code_of(member_id: bytes) -> str:
    """A bytes32 member id as its credit-code text (zero padding stripped)."""
    return bytes(member_id).rstrip(b"\x00").decode("ascii", "replace")


@dataclass(frozen=True)
class Member:
    id: bytes
    role: int
    name: str
    enc_key: bytes
    endpoint: str
    active: bool


@dataclass(frozen=True)
class RecordMeta:
    record_id: bytes
    rtype: int
    subject: bytes
    center: bytes
    owner: bytes
    latest: int
    removed: bool


@dataclass(frozen=True)
class VersionMeta:
    digest: bytes
    schema: int
    block_number: int
    timestamp: int
    tombstone: bool


@dataclass(frozen=True)
class Located:
    """A committed log: where it is and what it says."""

    block_number: int
    block_hash: bytes
    timestamp: int
    tx_hash: bytes
    log_index: int
    contract: str
    event: DecodedLog


class Domain:
    """Views, admission checks and history over one node's committed chain."""

    def __init__(self, core: ChainCore, *, views: str | None = None) -> None:
        self.core = core
        self.members = contract_abi("Members")
        self.records = contract_abi("Records")
        self.grants = contract_abi("Grants")
        self._abis: dict[bytes, ContractAbi] = {MEMBERS: self.members, RECORDS: self.records,
                                                GRANTS: self.grants}
        genesis_code = {addr: acct.code for addr, acct in core.genesis.alloc}
        self.enabled = all(genesis_code.get(a) for a in (MEMBERS, RECORDS, GRANTS))
        self._cache_lock = threading.Lock()
        self._cache_head = b""
        self._cache: dict[tuple[bytes, bytes], Any] = {}
        self.views = views_mode(views)
        self.readers: DomainReaders | None = None
        if self.enabled and self.views == "reader":
            self.readers = DomainReaders(MEMBERS, RECORDS, GRANTS)

    def head_state(self) -> HeadState:
        return self.core.head_state()

    def abi_at(self, address: bytes) -> ContractAbi:
        return self._abis[address]

    # -- calls ----------------------------------------------------------------------------
    def call(self, address: bytes, fn: str, *args: Any,
             at: BlockHeaderAPI | None = None) -> Any:
        """Run a view function on committed state (the head unless ``at``)."""
        abi = self._abis[address]
        header = at or self.core.head()
        data = abi.encode_call(fn, *args)
        key = (address, data)
        if at is None:
            with self._cache_lock:
                if self._cache_head != header.hash:
                    self._cache_head = header.hash
                    self._cache.clear()
                if key in self._cache:
                    return self._cache[key]
        tx = self.core.call_tx(b"\x00" * 20, address, data, header, _CALL_GAS, nonce=0)
        computation = self.core.call(tx, header, _CALL_GAS)
        if computation.is_error:
            reason = revert_reason(computation.output) or str(computation.error)
            raise DomainCallError(f"{CONTRACT_NAMES[address]}.{fn} reverted: {reason}")
        out = abi.decode_output(fn, computation.output)
        if at is None:
            with self._cache_lock:
                if self._cache_head == header.hash and len(self._cache) < _CACHE_ENTRIES:
                    self._cache[key] = out
        return out

    def role_of(self, account: bytes) -> int:
        if self.readers is not None:
            return self.readers.role_of(self.head_state(), bytes(account))
        return int(self.call(MEMBERS, "role_of", to_checksum_address(account)))

    def member_of(self, account: bytes) -> bytes:
        if self.readers is not None:
            return self.readers.member_of(self.head_state(), bytes(account))
        return bytes(self.call(MEMBERS, "member_of", to_checksum_address(account)))

    def standing(self, account: bytes) -> Standing | None:
        """The member ``account`` acts for and its role (0: suspended) in the Members
        registry at the head (one cached view call per account and block); None when
        this network has no domain contracts."""
        if not self.enabled:
            return None
        if self.readers is not None:
            member, role = self.readers.account_info(self.head_state(), bytes(account))
        else:
            member, role = self.call(MEMBERS, "account_info", to_checksum_address(account))
        return Standing(bytes(member), int(role))

    def may_act_suspended(self, tx: SignedTransactionAPI) -> bool:
        """A suspended member may still revoke grants (the contract checks the owner)."""
        return (self.enabled and bytes(tx.to) == GRANTS
                and bytes(tx.data[:4]) == self.grants.selector("revoke"))

    def member(self, member_id: bytes) -> Member | None:
        out = (self.readers.get_member(self.head_state(), bytes(member_id))
               if self.readers is not None else self.call(MEMBERS, "get_member", member_id))
        fields = _fields(out, ("role", "name", "enc_key", "endpoint", "active"))
        if not fields["role"]:
            return None
        return Member(bytes(member_id), int(fields["role"]), str(fields["name"]),
                      bytes(fields["enc_key"]), str(fields["endpoint"]), bool(fields["active"]))

    def record(self, record_id: bytes) -> RecordMeta | None:
        out = (self.readers.get_record(self.head_state(), bytes(record_id))
               if self.readers is not None else self.call(RECORDS, "get_record", record_id))
        f = _fields(out, ("rtype", "subject", "center", "owner", "latest", "removed"))
        if not f["latest"]:
            return None
        return RecordMeta(bytes(record_id), int(f["rtype"]), bytes(f["subject"]),
                          bytes(f["center"]), bytes(f["owner"]), int(f["latest"]),
                          bool(f["removed"]))

    def version(self, record_id: bytes, version: int) -> VersionMeta:
        out = (self.readers.get_version(self.head_state(), bytes(record_id), version)
               if self.readers is not None
               else self.call(RECORDS, "get_version", record_id, version))
        f = _fields(out, ("digest", "schema", "block_number", "timestamp", "tombstone"))
        return VersionMeta(bytes(f["digest"]), int(f["schema"]), int(f["block_number"]),
                           int(f["timestamp"]), bool(f["tombstone"]))

    def grant(self, grant_id: int) -> dict[str, Any] | None:
        f = (self.readers.get_grant(self.head_state(), grant_id)
             if self.readers is not None else self.call(GRANTS, "get_grant", grant_id))
        if isinstance(f, tuple):
            names = [o["name"] for o in self.grants.functions["get_grant"].outputs]
            f = dict(zip(names, f, strict=True))
        if not any(f.get("owner", b"")):
            return None
        return dict(f)

    def check_grant(self, grant_id: int, record_id: bytes, reader: bytes, *,
                    retry: bool = False) -> int:
        """Grants.check (a new read), or with ``retry`` Grants.check_retry: every rule but
        the read count, for a read whose receipt is already on chain."""
        if self.readers is not None:
            state = self.head_state()
            return self.readers.check(state, grant_id, bytes(record_id), bytes(reader),
                                      now=view_time(state.timestamp, time.time()),
                                      count_reads=not retry)
        fn = "check_retry" if retry else "check"
        return int(self.call(GRANTS, fn, grant_id, record_id, reader))

    def grant_refusal(self, granter: bytes, subject: bytes, types: int,
                      record_id: bytes) -> str:
        """Grants.grant_refusal: why ``granter`` may not make this grant ("" if it may)."""
        if self.readers is not None:
            return self.readers.grant_refusal(self.head_state(), bytes(granter),
                                              bytes(subject), types, bytes(record_id))
        return str(self.call(GRANTS, "grant_refusal", granter, subject, types, record_id))

    # -- admission ------------------------------------------------------------------------
    def check_admission(self, tx: SignedTransactionAPI, digest: Any) -> None:
        """Refuse a domain transaction its sender's role may not submit (or one that is
        malformed), with the reason; other transactions pass untouched."""
        to = bytes(tx.to)
        abi = self._abis.get(to)
        if abi is None or not self.enabled:
            return
        try:
            fn, args = abi.decode_input(bytes(tx.data))
        except AbiError as exc:
            raise Rejected("bad_call", f"not a valid {abi.name} call: {exc}") from None
        allowed = ALLOWED_ROLES.get((to, fn))
        if allowed is None:
            raise Rejected("bad_call", f"{abi.name}.{fn} is not a transaction; call it with "
                           "eth_call instead")
        if (to, fn) == (GRANTS, "revoke") and any(self.member_of(bytes(tx.sender))):
            # A suspended owner must still be able to stop its grants (``may_act_suspended``);
            # the contract checks that the sender belongs to the grant's owner.
            return
        role = self.role_of(bytes(tx.sender))
        if role not in allowed:
            have = ROLE_NAMES.get(role, "no role (not a registered member account)")
            need = " or ".join(sorted(ROLE_NAMES[r] for r in allowed))
            raise Rejected("role", f"{abi.name}.{fn} may only be sent by a {need} account; "
                           f"{to_checksum_address(bytes(tx.sender))} is {have}")
        if (to, fn) == (RECORDS, "publish"):
            if not in_namespace(bytes(args["record_id"]), self.member_of(bytes(tx.sender))):
                raise Rejected("bad_record_id",
                               "the record id is outside the publishing center's namespace: "
                               "derive it with yilian.protocol.record_ids.record_id_for")
            expect = digest(bytes(args["ciphertext"]))
            if bytes(args["digest"]) != expect:
                raise Rejected("digest_mismatch",
                               "the record's digest is not the suite digest of its ciphertext "
                               f"(expected 0x{expect.hex()}); the ciphertext or digest was "
                               "altered")
        if (to, fn) == (GRANTS, "grant"):
            check_grant_call(self, bytes(tx.sender), args)

    # -- history index ---------------------------------------------------------------------
    def index_writes(self, block: BlockAPI, receipts: Sequence[ReceiptAPI]
                     ) -> dict[bytes, bytes | None]:
        """Index entries for the domain events of ``block`` (to commit with the block)."""
        if not self.enabled:
            return {}
        writes: dict[bytes, bytes | None] = {}
        number = struct.pack(">Q", block.number)
        pos = 0
        for tx, receipt in zip(block.transactions, receipts, strict=True):
            for in_tx, log in enumerate(receipt.logs):
                abi = self._abis.get(bytes(log.address))
                if abi is not None:
                    try:
                        ev = abi.decode_log([t.to_bytes(32, "big") for t in log.topics],
                                            bytes(log.data))
                    except AbiError:
                        ev = None
                    if ev is not None:
                        here = number + struct.pack(">I", pos)
                        where = bytes(tx.hash) + struct.pack(">I", in_tx)
                        subject = ev.args.get("subject")
                        if isinstance(subject, bytes):
                            writes[INDEX + SUBJECT_EVENT + subject + here] = where
                        if ev.event == "AccessReceipt":
                            writes[INDEX + REQUEST_EVENT + ev.args["request_id"]] = here + where
                        if ev.event == "RecordPublished" or ev.event == "RecordRemoved":
                            key = ev.args["record_id"] + struct.pack(">I", ev.args["version"])
                            writes[INDEX + RECORD_EVENT + key] = here + where
                pos += 1
        return writes

    def locate(self, block_number: int, log_pos: int, where: bytes) -> Located:
        """The indexed event: log ``where[32:]`` of transaction ``where[:32]``."""
        tx_hash, in_tx = where[:32], struct.unpack(">I", where[32:36])[0]
        record = self.core.tx_record(tx_hash)
        header = self.core.header_by_number(block_number)
        if record is None or header is None or record.block_number != block_number:
            raise DomainCallError(f"indexed transaction 0x{tx_hash.hex()} of block "
                                  f"#{block_number} is missing")
        log = record.receipt.logs[in_tx]
        abi = self._abis[bytes(log.address)]
        ev = abi.decode_log([t.to_bytes(32, "big") for t in log.topics], bytes(log.data))
        return Located(block_number, bytes(header.hash), int(header.timestamp), tx_hash,
                       log_pos, abi.name, ev)

    def published(self, record_id: bytes, version: int) -> Located | None:
        """The RecordPublished (or RecordRemoved) event of one version."""
        raw = self.core.store.get(INDEX, RECORD_EVENT + record_id + struct.pack(">I", version))
        if raw is None:
            return None
        number, pos = struct.unpack(">QI", raw[:12])
        return self.locate(number, pos, raw[12:])

    def receipt_of_request(self, request_id: bytes) -> Located | None:
        """The AccessReceipt written under ``request_id`` (Grants' on-chain id), if any."""
        raw = self.core.store.get(INDEX, REQUEST_EVENT + request_id)
        if raw is None:
            return None
        number, pos = struct.unpack(">QI", raw[:12])
        return self.locate(number, pos, raw[12:])

    def history(self, subject: bytes, *, limit: int = 10_000) -> Iterator[Located]:
        """Every domain event about ``subject``, oldest first."""
        start = SUBJECT_EVENT + subject
        stop = (int.from_bytes(start, "big") + 1).to_bytes(len(start), "big")
        entries = self.core.store.iterate(INDEX, start, stop)
        for n, (key, where) in enumerate(entries):
            if n >= limit:
                return
            number, pos = struct.unpack(">QI", key[-12:])
            yield self.locate(number, pos, where)


def check_grant_call(domain: Domain, sender: bytes, args: dict[str, Any]) -> None:
    """Refuse a ``Grants.grant`` whose sender's member does not own what it would cover
    (``not_owner``, naming the owner). The rule itself is the contract's
    ``grant_refusal`` view on the head (or its reader, tested equal to it)."""
    granter = domain.member_of(sender)
    refusal = domain.grant_refusal(granter, bytes(args["subject"]), int(args["types"]),
                                   bytes(args["record_id"]))
    if refusal:
        raise Rejected("not_owner", f"{code_of(granter)} may not make this grant: {refusal}")


class DomainCallError(RuntimeError):
    """A view call on a domain contract failed (the message carries the revert reason)."""


def _fields(out: Any, names: Sequence[str]) -> dict[str, Any]:
    """A struct returned as a dict, or several outputs as a tuple, as a dict by name."""
    if isinstance(out, dict):
        return out
    if isinstance(out, tuple) and len(out) == len(names):
        return dict(zip(names, out, strict=True))
    raise DomainCallError(f"unexpected contract output shape: {out!r}")
