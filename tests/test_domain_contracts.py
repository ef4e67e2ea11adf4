"""Members, Records and Grants predeployed by ``domain_alloc``, driven by real signed transactions.

Every state change is a signed transaction executed in a block the node builds and commits
(bypassing the mempool's role pre-check, so the contracts' own checks are what is tested);
revert reasons are read with an ``eth_call``-style execution of the same call on the
committed head (what a wallet does) and the transaction is then sent anyway to show it
fails on chain too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak, to_canonical_address, to_checksum_address
from helpers import ADDRESSES, KEYS, genesis_doc, make_node, sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from yilian.contracts.abi import revert_reason
from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    MAX_ACCESS_ITEMS,
    MEMBERS_ADDRESS,
    RECORDS_ADDRESS,
    ROLE_ADMIN,
    ROLE_AUDITOR,
    ROLE_CENTER,
    ROLE_ENTERPRISE,
    ROLE_FINANCIAL,
    access_many_gas,
)
from yilian.contracts.artifacts import load
from yilian.network_configs.domain import MemberSeed, domain_alloc
from yilian.network_configs.local import LOCAL_CHAIN_ID
from yilian.node.chain import BlockEnv
from yilian.node.service import Node
from yilian.protocol.record_ids import record_id_for

# --- an independent reference for the credit-code check ------------------------------------

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def ref_check_char(first17: str) -> str:
    total = sum(ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return ALPHABET[(31 - total % 31) % 31]


def ref_valid(raw: bytes) -> bool:
    """GB 32100-2015 on a bytes32 id: 18 alphabet chars, zero padding, matching check char."""
    head, tail = raw[:18], raw[18:]
    if len(raw) != 32 or any(tail):
        return False
    text = head.decode("latin-1")
    return all(c in ALPHABET for c in text) and ref_check_char(text[:17]) == text[17]


def code(first17: str) -> str:
    return first17 + ref_check_char(first17)


def mid(credit_code: str) -> bytes:
    return credit_code.encode().ljust(32, b"\0")


ADMIN_CODE = "914403001922038216"
CENTER_A_CODE = "9144030071526726XG"
CENTER_B_CODE = code("91110000100000001")
ENTERPRISE_CODE = code("91440300MA5F00001")
BANK_CODE = code("91100000100003962")
AUDITOR_CODE = code("11100000000013127")
NEW_CODE = code("91440300MA5G00002")  # added by the admin in tests
OTHER_ENTERPRISE_CODE = code("91440300MA5H00003")  # valid but never registered

ADMIN, CENTER_A, CENTER_B, ENTERPRISE, BANK, AUDITOR, NEWCOMER, STRANGER = range(8)

SEEDS = (
    MemberSeed(ADMIN_CODE, ROLE_ADMIN, "Consortium admin", b"\x05" * 32, "", ADDRESSES[0]),
    MemberSeed(CENTER_A_CODE, ROLE_CENTER, "Shenzhen trading center", b"\x01" * 32,
               "https://a.example/api", ADDRESSES[1]),
    MemberSeed(CENTER_B_CODE, ROLE_CENTER, "Beijing trading center", b"\x02" * 64,
               "https://b.example/api", ADDRESSES[2]),
    MemberSeed(ENTERPRISE_CODE, ROLE_ENTERPRISE, "Builder Co.", b"\x03" * 32, "", ADDRESSES[3]),
    MemberSeed(BANK_CODE, ROLE_FINANCIAL, "Bank", b"\x04" * 32, "", ADDRESSES[4]),
    MemberSeed(AUDITOR_CODE, ROLE_AUDITOR, "Audit office", b"\x06" * 32, "", ADDRESSES[5]),
)

W3 = Web3()
CONTRACTS = {
    name: W3.eth.contract(address=to_checksum_address(address), abi=load(name).abi)
    for name, address in (("Members", MEMBERS_ADDRESS), ("Records", RECORDS_ADDRESS),
                          ("Grants", GRANTS_ADDRESS))
}
TYPE_BASIC, TYPE_QUALIFICATION, TYPE_CREDIT = 1, 2, 5


@functools.cache
def _alloc() -> dict[str, Any]:
    return domain_alloc(SEEDS)


# --- harness -------------------------------------------------------------------------------


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def _entry(contract: str, kind: str, name: str) -> dict[str, Any]:
    (entry,) = [e for e in load(contract).abi if e["type"] == kind and e.get("name") == name]
    return entry


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]


class Domain:
    """The domain contracts on an in-process node; ``send`` makes one block per call."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.nonces = [0] * len(KEYS)
        self.timestamp: int | None = None  # next block's timestamp; None: the node's clock

    def data(self, contract: str, fn: str, *args: Any) -> bytes:
        return bytes.fromhex(CONTRACTS[contract].encode_abi(fn, args=list(args))[2:])

    def execute(self, who: int, contract: str, fn: str, *args: Any) -> tuple[bool, bytes]:
        """Run a call on the committed head without a transaction: (success, output)."""
        core, head = self.node.core, self.node.core.head()
        tx = core.call_tx(to_canonical_address(ADDRESSES[who]),
                          to_canonical_address(CONTRACTS[contract].address),
                          self.data(contract, fn, *args), head, 10_000_000,
                          nonce=self.nonces[who])
        computation = core.call(tx, head, 10_000_000)
        return computation.is_success, bytes(computation.output)

    def call(self, contract: str, fn: str, *args: Any, who: int = STRANGER) -> Any:
        ok, out = self.execute(who, contract, fn, *args)
        assert ok, f"{contract}.{fn} reverted: {revert_reason(out)}"
        types = [_abi_type(o) for o in _entry(contract, "function", fn)["outputs"]]
        values = decode(types, out)
        return values[0] if len(values) == 1 else values

    def send(self, who: int, contract: str, fn: str, *args: Any, gas: int = 3_000_000) -> Any:
        raw = sign(KEYS[who], {
            "type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": self.nonces[who],
            "to": CONTRACTS[contract].address, "value": 0, "gas": gas,
            "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
            "data": self.data(contract, fn, *args),
        })
        self.nonces[who] += 1
        tx = self.node.core.vm_class.get_transaction_builder().decode(raw)
        head = self.node.core.head()
        timestamp = self.timestamp or max(int(time.time()), head.timestamp)
        # Straight into a block: the node's mempool admission pre-checks roles, and these
        # tests are about what the contracts themselves enforce.
        built = self.node.core.build([tx], BlockEnv(timestamp, self.node.proposer))
        assert not built.skipped, built.skipped
        committed = self.node.ledger.commit_block(built)
        (receipt,) = committed.receipts
        return receipt

    def ok(self, who: int, contract: str, fn: str, *args: Any) -> Any:
        receipt = self.send(who, contract, fn, *args)
        assert receipt.state_root == b"\x01", f"{contract}.{fn} failed on chain"
        return receipt

    def refused(self, who: int, contract: str, fn: str, *args: Any) -> str:
        """Assert the call reverts both as a call and as a mined transaction; the reason."""
        ok, out = self.execute(who, contract, fn, *args)
        assert not ok, f"{contract}.{fn} unexpectedly succeeded"
        receipt = self.send(who, contract, fn, *args)
        assert receipt.state_root == b"", "the transaction should fail on chain too"
        reason = revert_reason(out)
        assert reason is not None, f"no revert reason (output 0x{out.hex()})"
        return reason

    def events(self, receipt: Any) -> list[Event]:
        return [decode_event(log) for log in receipt.logs]


def decode_event(log: Any) -> Event:
    address = to_checksum_address(log.address)
    (contract,) = [n for n, c in CONTRACTS.items() if c.address == address]
    topics = [t.to_bytes(32, "big") for t in log.topics]
    for entry in load(contract).abi:
        if entry["type"] != "event":
            continue
        signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
        if keccak(text=signature) != topics[0]:
            continue
        indexed = [i for i in entry["inputs"] if i["indexed"]]
        plain = [i for i in entry["inputs"] if not i["indexed"]]
        args = {i["name"]: decode([_abi_type(i)], t)[0]
                for i, t in zip(indexed, topics[1:], strict=True)}
        args.update(zip([i["name"] for i in plain],
                        decode([_abi_type(i) for i in plain], log.data), strict=True))
        return Event(str(entry["name"]), args)
    raise AssertionError(f"unknown event topic 0x{topics[0].hex()}")


@pytest.fixture
def dom(tmp_path: Path) -> Iterator[Domain]:
    alloc = genesis_doc()["alloc"] | _alloc()
    node = make_node(tmp_path, alloc=alloc)
    try:
        yield Domain(node)
    finally:
        node.stop()


def rid_of(label: bytes, center: str = CENTER_A_CODE) -> bytes:
    """A record id in ``center``'s namespace (Records.vy refuses others for new records)."""
    return record_id_for(mid(center), label.decode())


def publish_args(record_id: bytes, version: int, *, rtype: int = TYPE_BASIC,
                 subject: str = ENTERPRISE_CODE, owner: str = ENTERPRISE_CODE,
                 schema: int = 1, ciphertext: bytes = b"sealed payload",
                 wrapped_keys: bytes = b"\x07" * 80) -> tuple[Any, ...]:
    digest = keccak(record_id + version.to_bytes(4, "big"))
    return (record_id, version, rtype, mid(subject), mid(owner), schema, digest, ciphertext,
            wrapped_keys)


# --- genesis / domain_alloc ----------------------------------------------------------------


def test_domain_alloc_is_deterministic_and_placed_at_fixed_addresses() -> None:
    alloc = _alloc()
    assert list(alloc) == [MEMBERS_ADDRESS, RECORDS_ADDRESS, GRANTS_ADDRESS]
    assert domain_alloc(list(SEEDS)) == alloc
    for entry in alloc.values():
        assert set(entry) == {"balance", "code", "storage"} and entry["balance"] == "0x0"
    assert alloc[MEMBERS_ADDRESS]["storage"]  # seeded members
    # Immutables (the addresses Records and Grants call) live in the runtime code.
    members_word = bytes(to_canonical_address(MEMBERS_ADDRESS)).rjust(32, b"\0").hex()
    records_word = bytes(to_canonical_address(RECORDS_ADDRESS)).rjust(32, b"\0").hex()
    assert alloc[RECORDS_ADDRESS]["code"].endswith(members_word)
    assert alloc[GRANTS_ADDRESS]["code"].endswith(members_word + records_word)
    fewer = domain_alloc(SEEDS[:1])
    assert fewer[MEMBERS_ADDRESS]["storage"] != alloc[MEMBERS_ADDRESS]["storage"]


@pytest.mark.parametrize(("change", "message"), [
    ({"id": "914403001922038217"}, "invalid unified social credit code"),
    ({"id": "91440300192203821"}, "invalid unified social credit code"),
    ({"role": 9}, "unknown role 9"),
    ({"enc_key": b"\0" * 33}, "must be 32 bytes (X25519) or 64 bytes (SM2 x||y), got 33"),
    ({"name": ""}, "the name must be 1..64 bytes"),
    ({"account": "0x1234"}, "is not a non-zero 0x account address"),
    ({"role": ROLE_CENTER}, "genesis needs an admin"),
])
def test_domain_alloc_validates_seeds(change: dict[str, Any], message: str) -> None:
    seed = SEEDS[0]
    bad = MemberSeed(**{**seed.__dict__, **change})
    with pytest.raises(ValueError) as info:
        domain_alloc([bad])
    assert message in str(info.value)


def test_domain_alloc_refuses_duplicates_and_empty() -> None:
    with pytest.raises(ValueError, match="used by an earlier seed"):
        domain_alloc([SEEDS[0], SEEDS[0]])
    clash = MemberSeed(CENTER_B_CODE, ROLE_CENTER, "x", b"\0" * 32, "", SEEDS[0].account)
    with pytest.raises(ValueError, match=r"account .* is used by an earlier seed"):
        domain_alloc([SEEDS[0], clash])
    with pytest.raises(ValueError, match="at least one member seed"):
        domain_alloc([])


# --- Members -------------------------------------------------------------------------------


def test_seeded_members_are_readable(dom: Domain) -> None:
    assert dom.call("Members", "member_count") == len(SEEDS)
    for i, seed in enumerate(SEEDS):
        assert dom.call("Members", "get_member", mid(seed.id)) == (
            seed.role, seed.name, seed.enc_key, seed.endpoint, True)
        assert dom.call("Members", "role_of", ADDRESSES[i]) == seed.role
        assert dom.call("Members", "member_of", ADDRESSES[i]) == mid(seed.id)
        assert dom.call("Members", "is_active", mid(seed.id)) is True
        assert dom.call("Members", "member_role", mid(seed.id)) == seed.role
    assert dom.call("Members", "role_of", ADDRESSES[STRANGER]) == 0
    assert dom.call("Members", "member_of", ADDRESSES[STRANGER]) == b"\0" * 32
    assert dom.call("Members", "account_info", ADDRESSES[CENTER_A]) == (
        mid(CENTER_A_CODE), ROLE_CENTER)
    assert dom.call("Members", "get_member", mid(OTHER_ENTERPRISE_CODE))[0] == 0
    assert dom.call("Members", "is_active", mid(OTHER_ENTERPRISE_CODE)) is False


def test_admin_adds_members_and_accounts(dom: Domain) -> None:
    args = (mid(NEW_CODE), ROLE_ENTERPRISE, "Newcomer Ltd", b"\x09" * 64, "",
            ADDRESSES[NEWCOMER])
    receipt = dom.ok(ADMIN, "Members", "add_member", *args)
    assert dom.events(receipt) == [
        Event("MemberAdded", {"id": mid(NEW_CODE), "role": ROLE_ENTERPRISE,
                              "name": "Newcomer Ltd"}),
        Event("AccountAdded", {"id": mid(NEW_CODE), "account": ADDRESSES[NEWCOMER].lower()}),
    ]
    assert dom.call("Members", "role_of", ADDRESSES[NEWCOMER]) == ROLE_ENTERPRISE
    assert dom.call("Members", "member_count") == len(SEEDS) + 1
    assert dom.refused(ADMIN, "Members", "add_member", *args) == "member already exists"

    receipt = dom.ok(ADMIN, "Members", "add_account", mid(CENTER_A_CODE), ADDRESSES[STRANGER])
    assert dom.call("Members", "role_of", ADDRESSES[STRANGER]) == ROLE_CENTER
    assert dom.refused(ADMIN, "Members", "add_account", mid(BANK_CODE),
                       ADDRESSES[STRANGER]) == "account already registered"
    assert dom.refused(ADMIN, "Members", "add_account", mid(OTHER_ENTERPRISE_CODE),
                       ADDRESSES[9]) == "no member with this id"
    assert dom.refused(CENTER_A, "Members", "add_account", mid(CENTER_A_CODE),
                       ADDRESSES[9]) == "only the consortium admin may add accounts"


@pytest.mark.parametrize(("who", "change", "reason"), [
    (CENTER_A, {}, "only the consortium admin may add members"),
    (STRANGER, {}, "only the consortium admin may add members"),
    (ADMIN, {"id": mid("914403001922038217")}, "invalid credit code"),
    (ADMIN, {"id": mid("914403001922038216").replace(b"9", b"z", 1)}, "invalid credit code"),
    (ADMIN, {"role": 0}, "unknown role"),
    (ADMIN, {"role": 6}, "unknown role"),
    (ADMIN, {"id": mid(BANK_CODE)}, "member already exists"),
    (ADMIN, {"account": ADDRESSES[CENTER_B]}, "account already registered"),
    (ADMIN, {"enc_key": b"\0" * 48}, "encryption key must be 32 or 64 bytes"),
    (ADMIN, {"name": ""}, "member name must not be empty"),
    (ADMIN, {"account": "0x" + "00" * 20}, "account must not be the zero address"),
])
def test_add_member_refusals(dom: Domain, who: int, change: dict[str, Any], reason: str) -> None:
    fields = {"id": mid(NEW_CODE), "role": ROLE_ENTERPRISE, "name": "Newcomer Ltd",
              "enc_key": b"\x09" * 32, "endpoint": "", "account": ADDRESSES[NEWCOMER]} | change
    assert dom.refused(who, "Members", "add_member", *fields.values()) == reason
    assert dom.call("Members", "member_count") == len(SEEDS)


def test_set_active(dom: Domain) -> None:
    receipt = dom.ok(ADMIN, "Members", "set_active", mid(BANK_CODE), False)
    assert dom.events(receipt) == [Event("MemberStatus", {"id": mid(BANK_CODE), "active": False})]
    assert dom.call("Members", "role_of", ADDRESSES[BANK]) == 0
    assert dom.call("Members", "member_of", ADDRESSES[BANK]) == mid(BANK_CODE)
    assert dom.call("Members", "account_info", ADDRESSES[BANK]) == (mid(BANK_CODE), 0)
    assert dom.call("Members", "is_active", mid(BANK_CODE)) is False
    dom.ok(ADMIN, "Members", "set_active", mid(BANK_CODE), True)
    assert dom.call("Members", "role_of", ADDRESSES[BANK]) == ROLE_FINANCIAL
    assert dom.refused(ADMIN, "Members", "set_active", mid(ADMIN_CODE), False) == (
        "the admin cannot suspend its own membership")
    assert dom.refused(BANK, "Members", "set_active", mid(BANK_CODE), False) == (
        "only the consortium admin may change a member's status")
    # A suspended admin is no admin.
    dom.ok(ADMIN, "Members", "add_member", mid(NEW_CODE), ROLE_ADMIN, "Second admin",
           b"\0" * 32, "", ADDRESSES[NEWCOMER])
    dom.ok(NEWCOMER, "Members", "set_active", mid(ADMIN_CODE), False)
    assert dom.refused(ADMIN, "Members", "set_active", mid(NEW_CODE), False) == (
        "only the consortium admin may change a member's status")


# --- Records -------------------------------------------------------------------------------


def test_publish_versions_and_event(dom: Domain) -> None:
    rid = rid_of(b"record-1")
    ciphertext = bytes(range(256)) * 8  # 2 KB
    receipt = dom.ok(CENTER_A, "Records", "publish",
                     *publish_args(rid, 1, ciphertext=ciphertext, schema=3))
    (event,) = dom.events(receipt)
    assert event == Event("RecordPublished", {
        "record_id": rid, "subject": mid(ENTERPRISE_CODE), "owner": mid(ENTERPRISE_CODE),
        "version": 1, "rtype": TYPE_BASIC, "center": mid(CENTER_A_CODE), "schema": 3,
        "digest": keccak(rid + (1).to_bytes(4, "big")), "ciphertext": ciphertext,
        "wrapped_keys": b"\x07" * 80})
    assert ciphertext in receipt.logs[0].data
    print(f"\ngas: publish v1 with a 2 KB ciphertext: {receipt.gas_used}")
    # +22k since owned_types: the first record of an (owner, subject, type) sets one bit
    assert receipt.gas_used < 262_000  # 266,735 before the credit-code precompile

    receipt2 = dom.ok(CENTER_A, "Records", "publish",
                      *publish_args(rid, 2, ciphertext=ciphertext, schema=4))
    print(f"gas: publish v2 with a 2 KB ciphertext: {receipt2.gas_used}")
    assert receipt2.gas_used < receipt.gas_used
    assert dom.call("Records", "get_record", rid) == (
        TYPE_BASIC, mid(ENTERPRISE_CODE), mid(CENTER_A_CODE), mid(ENTERPRISE_CODE), 2, False)
    head = dom.node.core.head()
    v1, v2 = (dom.call("Records", "get_version", rid, v) for v in (1, 2))
    assert v1[:2] == (keccak(rid + (1).to_bytes(4, "big")), 3) and v1[4] is False
    assert v2 == (keccak(rid + (2).to_bytes(4, "big")), 4, head.block_number, head.timestamp,
                  False)
    assert v1[2] == head.block_number - 1
    assert dom.call("Records", "get_version", rid, 3) == (b"\0" * 32, 0, 0, 0, False)
    assert dom.call("Records", "record_count") == 1
    # Storage holds digests only: the ciphertext is nowhere in the contract's state.
    assert dom.call("Records", "get_record", keccak(b"none"))[4] == 0

    # Resubmitting the same version is refused; so is skipping one.
    assert dom.refused(CENTER_A, "Records", "publish", *publish_args(rid, 2)) == (
        "version conflict: expected 3")
    assert dom.refused(CENTER_A, "Records", "publish", *publish_args(rid, 4)) == (
        "version conflict: expected 3")
    assert dom.refused(CENTER_A, "Records", "publish", *publish_args(keccak(b"new"), 2)) == (
        "version conflict: expected 1")
    assert dom.refused(CENTER_A, "Records", "publish",
                       *publish_args(rid, 3, rtype=TYPE_CREDIT)) == (
        "record type, subject and owner cannot change between versions")
    assert dom.call("Records", "get_record", rid)[4] == 2


@pytest.mark.parametrize(("who", "change", "reason"), [
    (ENTERPRISE, {}, "only a trading center may publish records"),
    (ADMIN, {}, "only a trading center may publish records"),
    (STRANGER, {}, "only a trading center may publish records"),
    (CENTER_A, {"rtype": 0}, "unknown record type (must be 1..7)"),
    (CENTER_A, {"rtype": 8}, "unknown record type (must be 1..7)"),
    (CENTER_A, {"subject": "914403001922038217", "owner": CENTER_A_CODE},
     "subject is not a valid unified social credit code"),
    (CENTER_A, {"schema": 0}, "schema must be greater than zero"),
    (CENTER_A, {"ciphertext": b""}, "ciphertext must not be empty"),
    (CENTER_A, {"owner": BANK_CODE},
     "owner must be the subject enterprise (registered) or the publishing center"),
    (CENTER_A, {"owner": CENTER_B_CODE},
     "owner must be the subject enterprise (registered) or the publishing center"),
    (CENTER_A, {"subject": OTHER_ENTERPRISE_CODE, "owner": OTHER_ENTERPRISE_CODE},
     "owner must be the subject enterprise (registered) or the publishing center"),
    (CENTER_A, {"subject": BANK_CODE, "owner": BANK_CODE},
     "owner must be the subject enterprise (registered) or the publishing center"),
])
def test_publish_refusals(dom: Domain, who: int, change: dict[str, Any], reason: str) -> None:
    assert dom.refused(who, "Records", "publish",
                       *publish_args(keccak(b"r"), 1, **change)) == reason
    assert dom.call("Records", "record_count") == 0


def test_publish_edge_cases(dom: Domain) -> None:
    # A center may own a record about an unregistered enterprise.
    rid = rid_of(b"center-owned")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(
        rid, 1, subject=OTHER_ENTERPRISE_CODE, owner=CENTER_A_CODE))
    assert dom.call("Records", "get_record", rid)[3] == mid(CENTER_A_CODE)
    # A zero digest or record id is refused.
    args = list(publish_args(keccak(b"x"), 1))
    args[6] = b"\0" * 32
    assert dom.refused(CENTER_A, "Records", "publish", *args) == "digest must not be zero"
    assert dom.refused(CENTER_A, "Records", "publish", *publish_args(b"\0" * 32, 1)) == (
        "record id must not be zero")
    # A suspended center cannot publish.
    dom.ok(ADMIN, "Members", "set_active", mid(CENTER_B_CODE), False)
    assert dom.refused(CENTER_B, "Records", "publish", *publish_args(keccak(b"b"), 1)) == (
        "only a trading center may publish records")


def test_a_center_cannot_take_an_id_in_another_centers_namespace(dom: Domain) -> None:
    squatted = rid_of(b"squat", CENTER_A_CODE)
    assert dom.refused(CENTER_B, "Records", "publish", *publish_args(
        squatted, 1, owner=CENTER_B_CODE)) == (
        "record id is outside the publishing center's namespace (its first 8 bytes must be "
        "those of keccak256(center id))")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(squatted, 1))


def test_only_providing_center_updates_and_removes(dom: Domain) -> None:
    rid = rid_of(b"record-2")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(rid, 1))
    assert dom.refused(CENTER_B, "Records", "publish", *publish_args(rid, 2)) == (
        "only the providing center may update a record")
    assert dom.refused(CENTER_B, "Records", "remove", rid, 2) == (
        "only the providing center may remove a record")
    assert dom.refused(ENTERPRISE, "Records", "remove", rid, 2) == (
        "only a trading center may remove records")
    assert dom.refused(CENTER_A, "Records", "remove", rid, 1) == "version conflict: expected 2"
    assert dom.refused(CENTER_A, "Records", "remove", keccak(b"none"), 1) == "no such record"

    receipt = dom.ok(CENTER_A, "Records", "remove", rid, 2)
    assert dom.events(receipt) == [Event("RecordRemoved", {
        "record_id": rid, "subject": mid(ENTERPRISE_CODE), "owner": mid(ENTERPRISE_CODE),
        "version": 2, "center": mid(CENTER_A_CODE)})]
    assert dom.call("Records", "get_record", rid) == (
        TYPE_BASIC, mid(ENTERPRISE_CODE), mid(CENTER_A_CODE), mid(ENTERPRISE_CODE), 2, True)
    tomb = dom.call("Records", "get_version", rid, 2)
    assert tomb[0] == b"\0" * 32 and tomb[4] is True
    assert dom.call("Records", "get_version", rid, 1)[4] is False  # history kept
    assert dom.refused(CENTER_A, "Records", "publish", *publish_args(rid, 3)) == (
        "record was removed")
    assert dom.refused(CENTER_A, "Records", "remove", rid, 3) == "record was removed"


# --- Grants --------------------------------------------------------------------------------


def _grant_args(*, grantee: str = BANK_CODE, subject: str = ENTERPRISE_CODE,
                types: int = 1 << TYPE_BASIC, record_id: bytes = b"\0" * 32,
                purpose: str = "loan review", expiry: int | None = None,
                max_reads: int = 2) -> tuple[Any, ...]:
    if expiry is None:
        expiry = int(time.time()) + 3600
    return (mid(grantee), mid(subject), types, record_id, purpose, expiry, max_reads)


def test_grant_check_and_access(dom: Domain) -> None:
    basic, cred = rid_of(b"basic"), rid_of(b"credit")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(basic, 1))
    dom.ok(CENTER_A, "Records", "publish", *publish_args(cred, 1, rtype=TYPE_CREDIT))
    own = rid_of(b"center-owned")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(own, 1, owner=CENTER_A_CODE))

    expiry = int(time.time()) + 3600
    receipt = dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(expiry=expiry))
    print(f"\ngas: grant (type mask, 11-byte purpose): {receipt.gas_used}")
    assert receipt.gas_used < 208_000  # 212,664 before the credit-code precompile
    assert dom.events(receipt) == [Event("Granted", {
        "grant_id": 1, "owner": mid(ENTERPRISE_CODE), "grantee": mid(BANK_CODE),
        "subject": mid(ENTERPRISE_CODE), "types": 1 << TYPE_BASIC, "record_id": b"\0" * 32,
        "purpose": "loan review", "expiry": expiry, "max_reads": 2})]
    head = dom.node.core.head()
    assert dom.call("Grants", "get_grant", 1) == (
        mid(ENTERPRISE_CODE), mid(BANK_CODE), mid(ENTERPRISE_CODE), 1 << TYPE_BASIC, b"\0" * 32,
        "loan review", expiry, 2, 0, False, head.timestamp)
    assert dom.call("Grants", "grant_count") == 1

    def check(grant_id: int, record_id: bytes, reader: str = BANK_CODE) -> int:
        return int(dom.call("Grants", "check", grant_id, record_id, mid(reader)))

    assert check(1, basic) == 0
    assert check(2, basic) == 1
    assert check(1, cred) == 5  # type not in the mask
    assert check(1, own) == 5  # owner differs from the grant's owner
    assert check(1, keccak(b"missing")) == 5
    assert check(1, basic, AUDITOR_CODE) == 6

    # Record-scoped grant by the center for its own record.
    dom.ok(CENTER_A, "Grants", "grant", *_grant_args(types=0, record_id=own,
                                                     grantee=AUDITOR_CODE))
    assert check(2, own, AUDITOR_CODE) == 0
    assert check(2, basic, AUDITOR_CODE) == 5  # another record
    # A grant over another subject's records is refused (see test_grant_owner_rules).
    dom.refused(ENTERPRISE, "Grants", "grant", *_grant_args(subject=OTHER_ENTERPRISE_CODE))
    assert dom.call("Grants", "grant_count") == 2

    # Access: the custodian logs it; reads are counted.
    receipt = dom.ok(CENTER_A, "Grants", "record_access", 1, basic, 1, mid(BANK_CODE),
                     keccak(b"req-1"))
    print(f"gas: record_access: {receipt.gas_used}")
    assert receipt.gas_used < 120_000
    (event,) = dom.events(receipt)
    head = dom.node.core.head()
    assert event == Event("AccessReceipt", {
        "subject": mid(ENTERPRISE_CODE), "grant_id": 1, "record_id": basic, "version": 1,
        "reader": mid(BANK_CODE), "custodian": mid(CENTER_A_CODE),
        "timestamp": head.timestamp, "request_id": keccak(b"req-1")})
    assert dom.call("Grants", "get_grant", 1)[8] == 1
    assert dom.call("Grants", "used_requests", keccak(b"req-1")) is True

    def access(who: int, grant_id: int, record_id: bytes, request: bytes, *,
               version: int = 1, reader: str = BANK_CODE) -> str:
        return dom.refused(who, "Grants", "record_access", grant_id, record_id, version,
                           mid(reader), request)

    assert access(CENTER_A, 1, basic, keccak(b"req-1")) == "request already used"
    assert access(CENTER_B, 1, basic, keccak(b"req-2")) == (
        "only the record's custodian center may record an access")
    assert access(ENTERPRISE, 1, basic, keccak(b"req-2")) == (
        "only the record's custodian center may record an access")
    assert access(CENTER_A, 1, basic, b"\0" * 32) == "request id must not be zero"
    assert access(CENTER_A, 1, basic, keccak(b"req-2"), version=2) == (
        "no such version of this record")
    assert access(CENTER_A, 1, basic, keccak(b"req-2"), version=0) == (
        "no such version of this record")
    assert access(CENTER_A, 9, basic, keccak(b"req-2")) == "grant not found"
    assert access(CENTER_A, 1, cred, keccak(b"req-2")) == "record not covered by grant"
    assert access(CENTER_A, 1, basic, keccak(b"req-2"), reader=AUDITOR_CODE) == (
        "reader is not the grantee")

    # A suspended grantee's grants pause with its membership; restoring it resumes them.
    dom.ok(ADMIN, "Members", "set_active", mid(BANK_CODE), False)
    assert check(1, basic) == 7
    assert access(CENTER_A, 1, basic, keccak(b"req-2")) == "the grantee is not an active member"
    dom.ok(ADMIN, "Members", "set_active", mid(BANK_CODE), True)
    assert check(1, basic) == 0

    dom.ok(CENTER_A, "Grants", "record_access", 1, basic, 1, mid(BANK_CODE), keccak(b"req-2"))
    assert check(1, basic) == 4
    assert access(CENTER_A, 1, basic, keccak(b"req-3")) == "no reads left"
    assert dom.call("Grants", "get_grant", 1)[8] == 2

    # Revocation: only the owner; afterwards status 2 and access refused.
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(max_reads=5))  # id 3
    assert dom.refused(BANK, "Grants", "revoke", 3) == "only the owner may revoke this grant"
    assert dom.refused(ENTERPRISE, "Grants", "revoke", 99) == "grant not found"
    receipt = dom.ok(ENTERPRISE, "Grants", "revoke", 3)
    assert dom.events(receipt) == [Event("Revoked", {
        "grant_id": 3, "owner": mid(ENTERPRISE_CODE), "subject": mid(ENTERPRISE_CODE)})]
    assert check(3, basic) == 2
    assert dom.call("Grants", "get_grant", 3)[9] is True
    assert access(CENTER_A, 3, basic, keccak(b"req-4")) == "grant revoked"
    assert dom.refused(ENTERPRISE, "Grants", "revoke", 3) == "grant already revoked"

    # A removed record is no longer covered; its tombstone is not readable.
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(max_reads=5))  # id 4
    dom.ok(CENTER_A, "Records", "remove", basic, 2)
    assert check(4, basic) == 5
    assert access(CENTER_A, 4, basic, keccak(b"req-5")) == "record not covered by grant"
    assert access(CENTER_A, 4, basic, keccak(b"req-5"), version=2) == (
        "that version is a removal tombstone, not readable data")


def test_record_access_many_records_each_item_or_none(dom: Domain) -> None:
    """One transaction, one AccessReceipt per item in order; any bad item reverts all of
    them (naming it) and spends nothing; reads are spent item by item."""
    recs = [rid_of(b"many-%d" % i) for i in range(3)]
    for r in recs:
        dom.ok(CENTER_A, "Records", "publish", *publish_args(r, 1))
    expiry = int(time.time()) + 3600
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(expiry=expiry, max_reads=4))  # 1
    bank = mid(BANK_CODE)

    def item(r: bytes, req: bytes, grant: int = 1, version: int = 1) -> tuple[Any, ...]:
        return (grant, r, version, bank, keccak(req))

    # A bad item (version 2 does not exist) anywhere: all or nothing, the item named.
    bad = [item(recs[0], b"m0"), item(recs[1], b"m1", version=2), item(recs[2], b"m2")]
    assert dom.refused(CENTER_A, "Grants", "record_access_many", bad) == (
        "item 1: no such version of this record")
    assert dom.call("Grants", "get_grant", 1)[8] == 0
    assert dom.call("Grants", "used_requests", keccak(b"m0")) is False
    # The same request id twice in one batch.
    twice = [item(recs[0], b"d"), item(recs[1], b"d")]
    assert dom.refused(CENTER_A, "Grants", "record_access_many", twice) == (
        "item 1: request already used")
    # Only the custodian center, and not an empty batch.
    assert "custodian" in dom.refused(CENTER_B, "Grants", "record_access_many",
                                      [item(recs[0], b"b")])
    assert dom.refused(CENTER_A, "Grants", "record_access_many", []) == "no items"

    good = [item(r, b"ok-%d" % i) for i, r in enumerate(recs)]
    receipt = dom.ok(CENTER_A, "Grants", "record_access_many", good)
    print(f"\ngas: record_access_many of 3: {receipt.gas_used}")
    events = dom.events(receipt)
    assert [(e.name, e.args["record_id"], e.args["request_id"]) for e in events] == [
        ("AccessReceipt", r, keccak(b"ok-%d" % i)) for i, r in enumerate(recs)]
    assert dom.call("Grants", "get_grant", 1)[8] == 3
    # One read left: two more items exceed it together, and spend nothing.
    assert dom.refused(CENTER_A, "Grants", "record_access_many",
                       [item(recs[0], b"x0"), item(recs[1], b"x1")]) == "item 1: no reads left"
    assert dom.call("Grants", "get_grant", 1)[8] == 3
    # The single-read entry point keeps its reasons (it shares the checks).
    assert dom.refused(CENTER_A, "Grants", "record_access", 1, recs[0], 1, bank,
                       keccak(b"ok-0")) == "request already used"


def test_record_access_many_at_most_32_items(dom: Domain) -> None:
    """32 items fit in one transaction under the center account's gas, even in the costliest
    shape (each item on its own record and grant); 33 do not decode (the DynArray bound)
    and spend nothing."""
    assert load("Grants").storage.constant("MAX_ACCESS_ITEMS") == MAX_ACCESS_ITEMS
    recs = [rid_of(b"cap-%d" % i) for i in range(MAX_ACCESS_ITEMS + 1)]
    for r in recs:
        dom.ok(CENTER_A, "Records", "publish", *publish_args(r, 1))
        dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(types=0, record_id=r))
    items = [(i + 1, r, 1, mid(BANK_CODE), keccak(b"cap-%d" % i))
             for i, r in enumerate(recs)]
    ok, _ = dom.execute(CENTER_A, "Grants", "record_access_many", items)
    assert not ok
    receipt = dom.send(CENTER_A, "Grants", "record_access_many", items)
    assert receipt.state_root == b""
    assert [dom.call("Grants", "get_grant", g)[8] for g in (1, 33)] == [0, 0]
    assert dom.call("Grants", "used_requests", keccak(b"cap-0")) is False
    receipt = dom.ok(CENTER_A, "Grants", "record_access_many", items[:MAX_ACCESS_ITEMS])
    print(f"\ngas: record_access_many of 32: {receipt.gas_used}")
    assert receipt.gas_used <= access_many_gas(32)
    assert len(dom.events(receipt)) == 32
    assert [dom.call("Grants", "get_grant", g)[8] for g in (1, 32, 33)] == [1, 1, 0]


def test_grant_expiry(dom: Domain) -> None:
    rid = rid_of(b"basic")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(rid, 1))
    now = dom.node.core.head().timestamp
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(expiry=now + 100))
    assert dom.call("Grants", "check", 1, rid, mid(BANK_CODE)) == 0
    dom.timestamp = now + 100  # the next blocks are at the expiry second
    dom.ok(ADMIN, "Members", "add_account", mid(ADMIN_CODE), ADDRESSES[9])  # any block
    assert dom.call("Grants", "check", 1, rid, mid(BANK_CODE)) == 3
    assert dom.refused(CENTER_A, "Grants", "record_access", 1, rid, 1, mid(BANK_CODE),
                       keccak(b"late")) == "grant expired"
    assert dom.refused(ENTERPRISE, "Grants", "grant", *_grant_args(expiry=now + 100)) == (
        "expiry must be in the future")


def test_grant_owner_rules(dom: Domain) -> None:
    """Only the owner grants: the subject by type over the types it owns, the providing
    center its own (center-owned) records by id; every refusal names the owner."""
    basic, cred = rid_of(b"basic"), rid_of(b"credit")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(basic, 1))
    dom.ok(CENTER_A, "Records", "publish", *publish_args(cred, 1, rtype=TYPE_CREDIT,
                                                         owner=CENTER_A_CODE))
    elsewhere = rid_of(b"elsewhere")  # about another subject
    dom.ok(CENTER_A, "Records", "publish", *publish_args(elsewhere, 1, owner=CENTER_A_CODE,
                                                         subject=NEW_CODE))
    gone = rid_of(b"gone")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(gone, 1, rtype=TYPE_CREDIT,
                                                         owner=CENTER_A_CODE))
    dom.ok(CENTER_A, "Records", "remove", gone, 2)
    ent, cen = ENTERPRISE_CODE, CENTER_A_CODE

    def by_subject(subject: str = ent) -> str:
        return f"only the subject {subject} may grant its basic, qualification, performance " \
            "and personnel records by type; ask it for the grant"

    def owns_none(granter: str) -> str:
        return f"{granter} owns no records of {ent} of the types asked for: its credit, " \
            "supervision and project records are owned by the center that provides them, " \
            "which grants them"

    cases: list[tuple[int, dict[str, Any], str]] = [
        # an enterprise's grant over center-owned types
        (ENTERPRISE, {"types": 1 << TYPE_CREDIT}, owns_none(ent)),
        (ENTERPRISE, {"types": (1 << TYPE_BASIC) | (1 << 7)}, owns_none(ent)),
        # non-owners: a bank granting to itself, centers by type, another subject
        (BANK, {"grantee": BANK_CODE}, by_subject()),
        (BANK, {"types": 1 << TYPE_CREDIT}, owns_none(BANK_CODE)),
        (CENTER_A, {}, by_subject()),  # basic: the subject's own
        (CENTER_B, {"types": 1 << TYPE_CREDIT}, owns_none(CENTER_B_CODE)),
        (CENTER_A, {"types": 1 << 6}, owns_none(cen)),  # it provides no supervision record
        (ENTERPRISE, {"subject": NEW_CODE}, by_subject(NEW_CODE)),
        # record grants: only the record's owner
        (ENTERPRISE, {"types": 0, "record_id": cred},
         f"only the record's owner {cen} may grant access to it"),
        (CENTER_B, {"types": 0, "record_id": cred},
         f"only the record's owner {cen} may grant access to it"),
        (BANK, {"types": 0, "record_id": cred, "grantee": BANK_CODE},
         f"only the record's owner {cen} may grant access to it"),
        (CENTER_A, {"types": 0, "record_id": basic},
         f"only the record's owner {ent} may grant access to it"),
        (CENTER_A, {"types": 0, "record_id": elsewhere},
         f"the record is about {NEW_CODE}, not the grant's subject"),
        (CENTER_A, {"types": 0, "record_id": gone}, "the record was removed"),
        (CENTER_A, {"types": 0, "record_id": rid_of(b"missing")},
         "no such record: a record grant needs a published record"),
    ]
    for who, change, reason in cases:
        args = _grant_args(**change)
        granter = mid([ADMIN_CODE, CENTER_A_CODE, CENTER_B_CODE, ENTERPRISE_CODE, BANK_CODE][who])
        assert dom.call("Grants", "grant_refusal", granter, *args[1:4]) == reason
        assert dom.refused(who, "Grants", "grant", *args) == reason, (who, change)
    assert dom.call("Grants", "grant_count") == 0
    # What the owners may do.
    allowed: list[tuple[int, dict[str, Any]]] = [
        (ENTERPRISE, {"types": 0b11110}),  # every type it owns by default, published or not
        (ENTERPRISE, {"types": 0, "record_id": basic}),
        (CENTER_A, {"types": 0, "record_id": cred}),
        (CENTER_A, {"types": 1 << TYPE_CREDIT}),  # exactly its own credit records of ent
        (CENTER_A, {"types": 0, "record_id": elsewhere, "subject": NEW_CODE}),
    ]
    for who, change in allowed:
        args = _grant_args(**change)
        granter = mid([ADMIN_CODE, CENTER_A_CODE, CENTER_B_CODE, ENTERPRISE_CODE][who])
        assert dom.call("Grants", "grant_refusal", granter, *args[1:4]) == ""
        dom.ok(who, "Grants", "grant", *args)
    assert dom.call("Grants", "grant_count") == len(allowed)
    assert dom.call("Grants", "check", 3, cred, mid(BANK_CODE)) == 0
    assert dom.call("Grants", "check", 4, cred, mid(BANK_CODE)) == 0
    assert dom.call("Records", "owned_types", mid(cen), mid(ent)) == 1 << TYPE_CREDIT
    assert dom.call("Records", "owned_types", mid(ent), mid(ent)) == 1 << TYPE_BASIC
    # A subject that owns a record of a center type (published with owner = subject) may
    # grant that type.
    own_credit = rid_of(b"own-credit")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(own_credit, 1, rtype=TYPE_CREDIT))
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(types=1 << TYPE_CREDIT))
    assert dom.call("Grants", "check", len(allowed) + 1, own_credit, mid(BANK_CODE)) == 0


def test_a_suspended_owners_grants_pause_and_it_can_still_revoke(dom: Domain) -> None:
    basic = rid_of(b"basic")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(basic, 1))
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(max_reads=5))
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(max_reads=5))
    assert dom.call("Grants", "check", 1, basic, mid(BANK_CODE)) == 0
    dom.ok(ADMIN, "Members", "set_active", mid(ENTERPRISE_CODE), False)
    assert dom.call("Grants", "check", 1, basic, mid(BANK_CODE)) == 8
    assert dom.call("Grants", "check_retry", 1, basic, mid(BANK_CODE)) == 8
    assert dom.refused(CENTER_A, "Grants", "record_access", 1, basic, 1, mid(BANK_CODE),
                       keccak(b"paused")) == "the grant's owner is not an active member"
    dom.ok(ENTERPRISE, "Grants", "revoke", 2)  # the suspended owner can still stop a grant
    dom.ok(ADMIN, "Members", "set_active", mid(ENTERPRISE_CODE), True)
    assert dom.call("Grants", "check", 1, basic, mid(BANK_CODE)) == 0
    assert dom.call("Grants", "check", 2, basic, mid(BANK_CODE)) == 2


def test_check_retry_ignores_only_the_read_count(dom: Domain) -> None:
    basic = rid_of(b"basic")
    dom.ok(CENTER_A, "Records", "publish", *publish_args(basic, 1))
    now = dom.node.core.head().timestamp
    dom.ok(ENTERPRISE, "Grants", "grant", *_grant_args(max_reads=1, expiry=now + 100))
    dom.ok(CENTER_A, "Grants", "record_access", 1, basic, 1, mid(BANK_CODE), keccak(b"r"))
    assert dom.call("Grants", "check", 1, basic, mid(BANK_CODE)) == 4
    assert dom.call("Grants", "check_retry", 1, basic, mid(BANK_CODE)) == 0
    assert dom.call("Grants", "check_retry", 1, basic, mid(AUDITOR_CODE)) == 6
    dom.timestamp = now + 100
    dom.ok(ADMIN, "Members", "add_account", mid(ADMIN_CODE), ADDRESSES[9])  # any block
    assert dom.call("Grants", "check_retry", 1, basic, mid(BANK_CODE)) == 3


@pytest.mark.parametrize(("who", "change", "reason"), [
    (STRANGER, {}, "only an active member may grant access"),
    (ENTERPRISE, {"grantee": OTHER_ENTERPRISE_CODE}, "grantee must be an active member"),
    (ENTERPRISE, {"subject": "914403001922038217"},
     "subject is not a valid unified social credit code"),
    (ENTERPRISE, {"types": 0}, "give either record types or one record id, not both or neither"),
    (ENTERPRISE, {"record_id": b"\x01" * 32},
     "give either record types or one record id, not both or neither"),
    (ENTERPRISE, {"types": 1}, "types may only set bits 1..7 (one per record type)"),
    (ENTERPRISE, {"types": 1 << 8}, "types may only set bits 1..7 (one per record type)"),
    (ENTERPRISE, {"expiry": 1}, "expiry must be in the future"),
    (ENTERPRISE, {"max_reads": 0}, "max_reads must be at least 1"),
    (ENTERPRISE, {"purpose": ""}, "purpose must not be empty"),
])
def test_grant_refusals(dom: Domain, who: int, change: dict[str, Any], reason: str) -> None:
    assert dom.refused(who, "Grants", "grant", *_grant_args(**change)) == reason
    assert dom.call("Grants", "grant_count") == 0


# --- the credit-code check on chain vs. the reference ----------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Domain]:
    node = make_node(tmp_path_factory.mktemp("credit"), alloc=genesis_doc()["alloc"] | _alloc())
    try:
        yield Domain(node)
    finally:
        node.stop()


first17 = st.text(alphabet=ALPHABET, min_size=17, max_size=17)
ids = st.one_of(
    first17.map(lambda s: mid(code(s))),  # valid
    st.tuples(first17, st.sampled_from(ALPHABET)).map(lambda t: mid(t[0] + t[1])),  # random check
    st.tuples(first17, st.sampled_from("IOSVZa/: \x00\xff")).map(
        lambda t: (t[0].encode("latin-1") + t[1].encode("latin-1")).ljust(32, b"\0")),
    st.tuples(first17, st.integers(0, 16)).map(  # a character replaced by an outsider
        lambda t: mid(code(t[0])).replace(t[0][t[1]].encode(), b"I", 1)),
    first17.map(lambda s: mid(code(s))[:18] + b"\0" * 13 + b"\x01"),  # junk in the padding
    first17.map(lambda s: mid(code(s)[1:])),  # 17 characters
    st.binary(min_size=32, max_size=32),
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=ids)
def test_credit_code_check_matches_reference(shared: Domain, raw: bytes) -> None:
    assert shared.call("Members", "valid_credit_code", raw) is ref_valid(raw)


def test_credit_code_examples(shared: Domain) -> None:
    for good in ("914403001922038216", "9144030071526726XG", BANK_CODE, AUDITOR_CODE):
        assert shared.call("Members", "valid_credit_code", mid(good)) is True
    for bad in ("914403001922038217", "9144030071526726XH", "91440300192203821",
                "9144030019220382160", "914403001922O38216", ""):
        assert shared.call("Members", "valid_credit_code", mid(bad)) is False


def test_the_subjects_own_types_on_chain_are_standard_default_owner(shared: Domain) -> None:
    """Grants' SUBJECT_TYPES (what a subject may grant by type before anything is
    published) is exactly the types standard.DEFAULT_OWNER gives the subject."""
    from yilian.protocol import standard

    for rtype in standard.RecordType:
        refusal = shared.call("Grants", "grant_refusal", mid(NEW_CODE), mid(NEW_CODE),
                              1 << int(rtype), b"\0" * 32)
        mine = standard.DEFAULT_OWNER[rtype] == standard.OWNER_SUBJECT
        assert (refusal == "") is mine, (rtype, refusal)
