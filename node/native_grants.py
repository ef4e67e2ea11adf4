"""Native execution of ``Grants.record_access`` and ``record_access_many`` (issue 10, Build 5).

Recording a read is the hottest domain transaction: every released key needs one. In
py-evm the Vyper bytecode of one item costs about 4-5 ms of CPU on every node (the
interpreter, and four child calls into Records and Members), so a grant-checked read
cost 15-20 ms of chain CPU summed over four validators before anything else. Here the EVM
runs these two functions natively, for well-formed calls, through the same typed storage
readers the node's views use (:mod:`yilian.node.domain_readers`, checked against the
contracts) and the same order of checks as ``Grants._record_access``:

1. the caller's account is an active CENTER member and the record's custodian;
2. the request id is not zero and not used;
3. the version exists and is not a tombstone;
4. ``_status`` of the grant for the reader, counting reads (revoked, expired, no reads
   left, not covered, not the grantee, grantee or owner inactive);

then it marks the request id used, counts the read in the grant's ``meta`` and logs
``AccessReceipt``, exactly as the bytecode does. A refusal reverts with the contract's
``Error(string)``, ``item <i>: <reason>`` in a batch, so the whole batch changes nothing.

The Vyper contract stays the executable reference: ``tests/test_native_grants.py`` runs
random transaction sequences through a VM with and without this and requires the same
status, revert data, logs and state root after every one. Everything else runs the
bytecode: other functions, any calldata not in the canonical ABI encoding (the bytecode's
decoder answers those), a call carrying value, a static call, DELEGATECALL/CALLCODE of the
code and EIP-7702 delegations.

Gas (a consensus rule, like the precompiles; docs/chain-core.md): ``CALL_GAS`` per call
and ``ITEM_GAS`` per item, each storage read at EIP-2929's price (2,100 cold, then warm,
100 warm), each write at EIP-2929/2200's (the cold surcharge, then 20,000 to set a zero
slot, 2,900 to change a slot still at its value before the transaction, 100 otherwise; no
refunds: these writes never clear a slot; none with 2,300 gas left or less, as EIP-2200),
each call the bytecode makes into Members or Records at EIP-2929's account price (2,600
cold, then warm, 100 warm; the account is left warm, as the call would) and the log at
LOG4's price (375 for the log and per topic, 8 per data byte). Charged as the bytecode
goes, item by item, this stays below the bytecode's gas (tests/test_native_grants.py
checks each transaction and prints both).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth.abc import ComputationAPI, MessageAPI, StateAPI
from eth.exceptions import OutOfGas, Revert
from eth.vm.forks.berlin.constants import (
    COLD_ACCOUNT_ACCESS_COST,
    COLD_SLOAD_COST,
    WARM_STORAGE_READ_COST,
)
from eth_abi import encode
from eth_typing import Address

from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    MAX_ACCESS_ITEMS,
    MEMBERS_ADDRESS,
    RECORDS_ADDRESS,
    ROLE_CENTER,
)
from yilian.contracts.artifacts import load
from yilian.node.domain_readers import DomainReaders

CALL_GAS = 700  # the function's dispatch and its Members.account_info call
ITEM_GAS = 1_000  # an item's decoding and the calls into Records and Members
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)

GRANTS = bytes.fromhex(GRANTS_ADDRESS[2:])
MEMBERS = bytes.fromhex(MEMBERS_ADDRESS[2:])
RECORDS = bytes.fromhex(RECORDS_ADDRESS[2:])
SSTORE_SENTRY = 2_300  # EIP-2200: no SSTORE with this much gas left or less
# The code these functions are native for: each contract's runtime code followed by its
# immutables (the addresses it was constructed with), as the genesis generator deploys
# them (tests/test_native_grants.py checks this against domain_alloc).
EXPECTED_CODE = {
    MEMBERS: bytes(load("Members").deployed_bytecode),
    RECORDS: bytes(load("Records").deployed_bytecode) + MEMBERS.rjust(32, b"\0"),
    GRANTS: bytes(load("Grants").deployed_bytecode) + MEMBERS.rjust(32, b"\0")
    + RECORDS.rjust(32, b"\0"),
}
_ABI = contract_abi("Grants")
_SINGLE = _ABI.selector("record_access")
_MANY = _ABI.selector("record_access_many")
_RECEIPT = _ABI.events["AccessReceipt"]
_RECEIPT_DATA = [str(p["type"]) for p in _RECEIPT.inputs if not p.get("indexed")]
READERS = DomainReaders(MEMBERS, RECORDS, GRANTS)
# the statuses _status reaches after calling Members.member_role (reader, then owner)
_MEMBER_ROLE_CALLS = {READERS.status_code("GRANTEE_INACTIVE"): 1,
                      READERS.status_code("OWNER_INACTIVE"): 2, READERS.status_code("OK"): 2}
_STATUS_TEXT = {
    READERS.status_code(name): text for name, text in (
        ("NO_GRANT", "grant not found"), ("REVOKED", "grant revoked"),
        ("EXPIRED", "grant expired"), ("NO_READS_LEFT", "no reads left"),
        ("NOT_COVERED", "record not covered by grant"),
        ("NOT_GRANTEE", "reader is not the grantee"),
        ("GRANTEE_INACTIVE", "the grantee is not an active member"),
        ("OWNER_INACTIVE", "the grant's owner is not an active member"))}


@dataclass(frozen=True)
class Access:
    """One read to record: ``record_access``'s arguments."""

    grant_id: int
    record_id: bytes
    version: int
    reader: bytes
    request_id: bytes


class _Storage:
    """Storage inside the computation, at EIP-2929/2200 prices (see the module doc)."""

    def __init__(self, computation: ComputationAPI) -> None:
        self._computation = computation
        self._state = computation.state

    def _touch(self, at: Address, slot: int) -> None:
        if self._state.is_storage_warm(at, slot):
            return
        self._computation.consume_gas(COLD_SLOAD_COST - WARM_STORAGE_READ_COST,
                                      "native: cold slot")
        self._state.mark_storage_warm(at, slot)

    def word(self, address: bytes, slot: int) -> int:
        at = Address(address)
        self._touch(at, slot)
        self._computation.consume_gas(WARM_STORAGE_READ_COST, "native: read")
        return self._state.get_storage(at, slot)

    def bytestring(self, address: bytes, slot: int, max_length: int) -> bytes:
        raise NotImplementedError("native record_access reads words only")

    def call(self, address: bytes) -> None:
        """What the bytecode's STATICCALL to ``address`` costs and leaves: the account
        access (cold, then warm; or warm), so later calls in the transaction pay alike."""
        at = Address(address)
        if self._state.is_address_warm(at):
            self._computation.consume_gas(WARM_STORAGE_READ_COST, "native: call")
        else:
            self._computation.consume_gas(COLD_ACCOUNT_ACCESS_COST, "native: cold call")
            self._state.mark_address_warm(at)

    def set_word(self, address: bytes, slot: int, value: int) -> None:
        at, state = Address(address), self._state
        if self._computation.get_gas_remaining() <= SSTORE_SENTRY:
            raise OutOfGas("native: SSTORE with no more than 2,300 gas left (EIP-2200)")
        self._touch(at, slot)
        current = state.get_storage(at, slot)
        original = state.get_storage(at, slot, from_journal=False)
        if current == value or original != current:
            cost = WARM_STORAGE_READ_COST
        else:
            cost = 20_000 if original == 0 else 2_900
        self._computation.consume_gas(cost, "native: write")
        state.set_storage(at, slot, value)


def canonical_accesses(state: StateAPI, message: MessageAPI) -> list[Access] | None:
    """The reads a well-formed call of either function records, in order; None for any
    other message (the bytecode then runs), and for any chain whose Members, Records and
    Grants are not the contracts these functions are native for."""
    if (bytes(message.code_address) != GRANTS or message.storage_address != message.code_address
            or message.is_create or message.is_delegation or message.is_static
            or message.value):
        return None
    if any(bytes(state.get_code(Address(a))) != code for a, code in EXPECTED_CODE.items()):
        return None
    data = bytes(message.data)
    selector, body = data[:4], data[4:]
    if selector == _SINGLE and len(body) == 160:
        words = [body]
    elif selector == _MANY and len(body) >= 64:
        count = int.from_bytes(body[32:64], "big")
        if int.from_bytes(body[:32], "big") != 32 or not 1 <= count <= MAX_ACCESS_ITEMS \
                or len(body) != 64 + 160 * count:
            return None
        words = [body[64 + 160 * i: 224 + 160 * i] for i in range(count)]
    else:
        return None
    out = []
    for w in words:
        version = int.from_bytes(w[64:96], "big")
        if version >= 1 << 32:
            return None
        out.append(Access(int.from_bytes(w[:32], "big"), w[32:64], version, w[96:128],
                          w[128:160]))
    return out


def _why_refused(s: _Storage, me: bytes, role: int, a: Access, now: int) -> tuple[str, bytes]:
    """``_record_access``'s checks, in its order: the reason ("" to record it) and the
    record's subject."""
    s.call(RECORDS)
    rec = READERS.get_record(s, a.record_id)
    subject = bytes(rec["subject"])
    if role != ROLE_CENTER or me != rec["center"]:
        return "only the record's custodian center may record an access", subject
    if a.request_id == bytes(32):
        return "request id must not be zero", subject
    if READERS.used_requests(s, a.request_id):
        return "request already used", subject
    if a.version < 1 or a.version > rec["latest"]:
        return "no such version of this record", subject
    s.call(RECORDS)
    if READERS.get_version(s, a.record_id, a.version)["tombstone"]:
        return "that version is a removal tombstone, not readable data", subject
    status = READERS.check(s, a.grant_id, a.record_id, a.reader, now=now, count_reads=True)
    for _ in range(_MEMBER_ROLE_CALLS.get(status, 0)):
        s.call(MEMBERS)
    return _STATUS_TEXT.get(status, ""), subject


def record_accesses(computation: ComputationAPI, accesses: list[Access]) -> None:
    """Run ``record_access`` (one access) or ``record_access_many`` on ``computation``:
    receipts logged and state written, or Revert with the contract's reason."""
    s = _Storage(computation)
    computation.consume_gas(CALL_GAS, "native record_access")
    s.call(MEMBERS)
    me, role = READERS.account_info(s, bytes(computation.msg.sender))
    now = computation.state.timestamp
    many = bytes(computation.msg.data[:4]) == _MANY
    for i, a in enumerate(accesses):
        computation.consume_gas(ITEM_GAS, "native record_access: item")
        reason, subject = _why_refused(s, me, role, a, now)
        if reason:
            text = f"item {i}: {reason}" if many else reason
            computation.output = ERROR_SELECTOR + encode(["string"], [text])
            raise Revert(computation.output)
        s.set_word(GRANTS, READERS.used_request_slot(a.request_id), 1)
        meta_slot = READERS.grant_meta_slot(a.grant_id)
        s.set_word(GRANTS, meta_slot, s.word(GRANTS, meta_slot) + READERS.one_read)
        data = encode(_RECEIPT_DATA, [a.version, a.reader, me, now, a.request_id])
        computation.consume_gas(375 * 5 + 8 * len(data), "native: log")
        computation.add_log_entry(Address(GRANTS), (
            int.from_bytes(_RECEIPT.topic, "big"), int.from_bytes(subject, "big"),
            a.grant_id, int.from_bytes(a.record_id, "big")), data)
