"""HeadState reads the state trie directly and answers what py-evm's state answers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from eth_typing import Address
from eth_utils import to_canonical_address
from helpers import ADDRESSES, KEYS, make_node, produce_all, sign_put, sign_transfer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.contracts import artifacts
from yilian.contracts.layout import key_word, map_slot
from yilian.network_configs.local import RECORD_STORE_ADDRESS
from yilian.node import head_state
from yilian.node.domain import VIEWS_ENV, views_mode
from yilian.node.head_state import HeadState

STORE = to_canonical_address(RECORD_STORE_ADDRESS)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=1, max_size=4),
                          st.binary(min_size=1, max_size=4).filter(any)),
                min_size=1, max_size=12),
       st.lists(st.integers(0, 2**256 - 1), max_size=6))
def test_head_state_equals_py_evm(puts: list[tuple[int, bytes, bytes]],
                                  extra_slots: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = make_node(Path(tmp))
        try:
            nonces = [0] * 4
            for who, key, value in puts:
                node.submit(sign_put(KEYS[who], nonces[who], key, value))
                nonces[who] += 1
            node.submit(sign_transfer(KEYS[0], nonces[0], value=7))
            produce_all(node)
            core = node.core
            head = core.head()
            state = core.head_state()
            assert state.header.hash == head.hash
            evm = core.reader().get_vm(head).state
            for address in [to_canonical_address(a) for a in ADDRESSES] + [STORE, bytes(20)]:
                view = state.account(address)
                assert view.nonce == evm.get_nonce(Address(address))
                assert view.balance == evm.get_balance(Address(address))
                assert view.code == evm.get_code(Address(address))
            records = artifacts.load("RecordStore").storage.var("records")
            assert records.type.key is not None
            slots = [*extra_slots, *range(4)]
            slots += [map_slot(records.slot, key_word(records.type.key, k.ljust(32, b"\0")))
                      for _, k, _ in puts]
            assert any(state.word(STORE, slot) for slot in slots[-len(puts):])
            for slot in slots:
                assert state.word(STORE, slot) == evm.get_storage(Address(STORE), slot)
        finally:
            node.stop()


def test_head_states_follow_the_head_and_old_states_stay_consistent(tmp_path: Path) -> None:
    node = make_node(tmp_path)
    try:
        before = node.core.head_state()
        assert node.core.head_state() is before  # one per head
        node.submit(sign_transfer(KEYS[0], 0, value=5))
        produce_all(node)
        after = node.core.head_state()
        assert after is not before and after.header.block_number == before.header.block_number + 1
        sender = to_canonical_address(ADDRESSES[0])
        assert (before.nonce(sender), after.nonce(sender)) == (0, 1)  # the old root still reads
    finally:
        node.stop()


def test_memo_is_bounded_and_byte_strings_check_their_length(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = make_node(tmp_path)
    try:
        monkeypatch.setattr(head_state, "MEMO_WORDS", 4)
        state = HeadState(node.core.state_db(), node.core.head())
        for slot in range(10):
            state.word(STORE, slot)
            assert len(state._words) <= 4
        assert state.bytestring(STORE, 1000, 64) == b""  # nothing stored: empty
        node.submit(sign_put(KEYS[0], 0, b"\x01", b"\x05"))
        produce_all(node)
        writes = artifacts.load("RecordStore").storage.var("writes").slot
        fresh = node.core.head_state()
        assert fresh.word(STORE, writes) == 1  # read as a length, it claims one byte
        with pytest.raises(ValueError, match="claims 1 bytes, more than its type's 0"):
            fresh.bytestring(STORE, writes, 0)
    finally:
        node.stop()


def test_views_mode_is_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VIEWS_ENV, raising=False)
    assert views_mode() == "reader"
    monkeypatch.setenv(VIEWS_ENV, "evm")
    assert views_mode() == "evm" and views_mode("reader") == "reader"
    monkeypatch.setenv(VIEWS_ENV, "fast")
    with pytest.raises(ValueError, match="YILIAN_VIEWS='fast'"):
        views_mode()
    assert os.environ[VIEWS_ENV] == "fast"


def test_signed_integers_read_sign_extended() -> None:
    """Vyper stores a negative intN sign-extended to 256 bits."""
    from yilian.contracts.layout import StorageType
    from yilian.node.domain_readers import read

    class Words:
        def word(self, address: bytes, slot: int) -> int:
            return {0: 2**256 - 1, 1: 5, 2: 2**256 - 128}[slot]

    for slot, want in ((0, -1), (1, 5), (2, -128)):
        assert read(Words(), b"", slot, StorageType("value", "int8", 1)) == want  # type: ignore[arg-type]
