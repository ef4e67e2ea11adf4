"""The signing guard never signs two different messages for one height/round/step,
across restarts too (the record is synced before the signature is returned)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from yilian.node.privval import DoubleSign, Regression, SigningGuard, SigningRefused, Step
from yilian.node.storage import Store

KEY = SigningKey(b"\x07" * 32)


def sign(msg: bytes) -> bytes:
    return bytes(KEY.sign(msg).signature)


def test_same_message_gets_same_signature_and_conflict_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    sig = guard.sign(5, 0, Step.PREVOTE, b"vote-A", b"A")
    assert guard.sign(5, 0, Step.PREVOTE, b"vote-A", b"A") == sig
    with pytest.raises(DoubleSign):
        guard.sign(5, 0, Step.PREVOTE, b"vote-B", b"B")
    with pytest.raises(Regression):
        guard.sign(4, 9, Step.PRECOMMIT, b"old", b"A")
    store.close()


def test_restart_keeps_the_record_and_the_lock(tmp_path: Path) -> None:
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    guard.sign(7, 2, Step.PRECOMMIT, b"precommit-X", b"X")
    store.close()  # a crash after the synced write looks the same to the next process
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    assert guard.lock(7) == (2, b"X")
    assert guard.lock(8) is None
    with pytest.raises(DoubleSign):
        guard.sign(7, 2, Step.PRECOMMIT, b"precommit-Y", b"Y")
    with pytest.raises(Regression):
        guard.sign(7, 1, Step.PREVOTE, b"prevote-Y", b"Y")
    guard.sign(7, 3, Step.PREVOTE, b"prevote-X", b"X")
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(list(Step)),
                          st.sampled_from([b"a", b"b"])), max_size=25))
def test_never_two_signatures_for_one_hrs(tmp_path_factory: pytest.TempPathFactory,
                                         requests: list[tuple[int, int, Step, bytes]]) -> None:
    store = Store(tmp_path_factory.mktemp("pv"))
    guard = SigningGuard(store, sign)
    signed: dict[tuple[int, int, Step], bytes] = {}
    for h, r, s, msg in requests:
        try:
            guard.sign(h, r, s, msg)
        except SigningRefused:
            continue
        assert signed.setdefault((h, r, s), msg) == msg
    store.close()
