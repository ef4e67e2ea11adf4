"""Storage layouts in the artifacts (yilian.contracts.layout): what the compiler said, read
back right, and found in real contract state."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from eth_utils import keccak, to_canonical_address
from hypothesis import given
from hypothesis import strategies as st

from yilian.contracts import artifacts
from yilian.contracts.addresses import MEMBERS_ADDRESS, ROLE_ADMIN, ROLE_CENTER
from yilian.contracts.layout import LayoutError, StorageType, key_word, map_slot, parse
from yilian.network_configs.domain import MemberSeed, domain_alloc
from yilian.protocol.credit_code import to_bytes32

ADMIN_CODE = "914403001922038216"
CENTER_CODE = "9144030071526726XG"
ADMIN_ACCOUNT = "0x" + "11" * 20


def _raw(name: str) -> dict[str, Any]:
    path = artifacts._artifacts_dir().joinpath(name + ".json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_members_layout_is_the_compilers() -> None:
    layout = artifacts.load("Members").storage
    members = layout.var("members")
    assert (members.slot, members.type.kind) == (0, "hashmap")
    assert layout.var("account_member").slot == 1
    assert layout.var("member_count").slot == 2
    struct = members.type.value
    assert struct is not None and struct.kind == "struct" and struct.words == 13
    assert [(m.name, m.offset, m.type.type) for m in struct.members] == [
        ("role", 0, "uint8"), ("name", 1, "String[64]"), ("enc_key", 4, "Bytes[64]"),
        ("endpoint", 7, "String[128]"), ("active", 12, "bool")]
    assert layout.constant("ROLE_CENTER") == ROLE_CENTER


def test_every_domain_artifact_has_a_layout_and_its_constants() -> None:
    for name in ("Members", "Records", "Grants"):
        layout = artifacts.load(name).storage
        assert layout.variables, name
    grants = artifacts.load("Grants").storage
    assert [grants.constant(c) for c in ("EXPIRY_AT", "READS_AT", "TYPES_AT")] == [0, 96, 200]
    versions = artifacts.load("Records").storage.var("versions").type
    assert versions.value is not None and versions.value.kind == "hashmap"  # nested map
    assert versions.value.key is not None and versions.value.key.type == "uint32"


def test_the_layout_finds_what_genesis_wrote() -> None:
    """map_slot (slot first, then the key) and the struct offsets locate the words the
    Members constructor wrote for a seeded member."""
    seeds = [MemberSeed(ADMIN_CODE, ROLE_ADMIN, "Admin", b"\x01" * 32, "http://x", ADMIN_ACCOUNT),
             MemberSeed(CENTER_CODE, ROLE_CENTER, "Center", b"\x02" * 64, "", "0x" + "22" * 20)]
    alloc = domain_alloc(seeds)
    storage = {int(k, 16): int(v, 16) for k, v in alloc[MEMBERS_ADDRESS]["storage"].items()}
    layout = artifacts.load("Members").storage
    account_member = layout.var("account_member")
    assert account_member.type.key is not None
    at = map_slot(account_member.slot,
                  key_word(account_member.type.key, to_canonical_address(ADMIN_ACCOUNT)))
    assert storage[at].to_bytes(32, "big") == to_bytes32(ADMIN_CODE)
    members = layout.var("members")
    assert members.type.key is not None and members.type.value is not None
    base = map_slot(members.slot, key_word(members.type.key, to_bytes32(CENTER_CODE)))
    struct = members.type.value
    assert storage[base + struct.member("role").offset] == ROLE_CENTER
    assert storage[base + struct.member("enc_key").offset] == 64  # the length word
    assert storage[base + struct.member("active").offset] == 1
    assert storage[layout.var("member_count").slot] == 2


def test_parse_refuses_what_it_cannot_use() -> None:
    good = _raw("Members")
    for broken, message in (
        ({k: v for k, v in good.items() if k != "storageTypes"}, "rebuild it"),
        (_with(good, ["storageLayout", "storage_layout", "members", "n_slots"], 2), "takes 2"),
        (_with(good, ["storageTypes", "members", "kind"], "tuple"), "not a storage type"),
    ):
        with pytest.raises(LayoutError, match=message):
            parse("Members", broken)
    layout = parse("Members", good)
    with pytest.raises(LayoutError, match="has: account_member, member_count, members"):
        layout.var("nope")
    struct = layout.var("members").type.value
    assert struct is not None
    with pytest.raises(LayoutError, match="members: role, name"):
        struct.member("colour")


def _with(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _t(name: str) -> StorageType:
    return StorageType("value", name, 1)


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**64))
def test_integer_keys_are_big_endian_words_and_slots_hash_slot_first(key: int, slot: int) -> None:
    word = key_word(_t("uint256"), key)
    assert word == key.to_bytes(32, "big")
    assert map_slot(slot, word) == int.from_bytes(keccak(slot.to_bytes(32, "big") + word), "big")


@given(st.binary(min_size=0, max_size=40))
def test_address_and_bytes32_keys_need_their_exact_length(raw: bytes) -> None:
    if len(raw) == 20:
        assert key_word(_t("address"), raw) == bytes(12) + raw
    else:
        with pytest.raises(LayoutError, match="20 bytes"):
            key_word(_t("address"), raw)
    if len(raw) == 32:
        assert key_word(_t("bytes32"), raw) == raw
    else:
        with pytest.raises(LayoutError, match="32 bytes"):
            key_word(_t("bytes32"), raw)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 20) | st.sampled_from(
        ["value", "struct", "hashmap", "bytes", "uint8", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "type", "words", "key", "value", "members", "name", "offset",
                         "length", "element", "slot", "n_slots", "storage_layout"]),
        inner, max_size=5),
    max_leaves=12)


@given(JSONISH, JSONISH, st.dictionaries(st.text(max_size=3), JSONISH, max_size=2))
def test_parse_of_any_json_gives_a_layout_or_a_layout_error(layout: Any, types: Any,
                                                            constants: Any) -> None:
    data = {"storageLayout": layout, "storageTypes": types, "constants": constants}
    with contextlib.suppress(LayoutError):
        parse("X", data)
