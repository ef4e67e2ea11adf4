"""The signing guard never signs two different messages for one height/round/step,
across restarts too (the record is synced before the signature is returned), and its sign
log keeps every message signed in the current height, block included, for the restart."""

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


def test_sign_log_keeps_the_height_across_a_restart_until_pruned(tmp_path: Path) -> None:
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    guard.sign(4, 0, Step.PRECOMMIT, b"old", b"O", block=b"block-O")
    prop = guard.sign(5, 0, Step.PROPOSE, b"proposal-A", b"A", valid_round=-1,
                      block=b"block-A")
    pv = guard.sign(5, 0, Step.PREVOTE, b"prevote-A", b"A")
    guard.sign(5, 0, Step.PRECOMMIT, b"precommit-nil")
    guard.sign(5, 1, Step.PREVOTE, b"prevote-B", b"B")
    guard.sign(5, 1, Step.PRECOMMIT, b"precommit-B", b"B", block=b"block-B")
    store.close()  # kill -9 after the synced writes looks the same
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    recs = guard.records(5)
    assert [(r.round, r.step, r.value_id) for r in recs] == [
        (0, Step.PROPOSE, b"A"), (0, Step.PREVOTE, b"A"), (0, Step.PRECOMMIT, None),
        (1, Step.PREVOTE, b"B"), (1, Step.PRECOMMIT, b"B")]
    assert (recs[0].signature, recs[0].valid_round, recs[1].signature) == (prop, -1, pv)
    assert guard.block(5, b"A") == b"block-A" and guard.block(5, b"B") == b"block-B"
    assert guard.lock(5) == (1, b"B")
    # an earlier slot of the log: the same message gets its signature back, another is
    # refused as a double sign, an unsigned earlier slot as a regression
    assert guard.sign(5, 0, Step.PREVOTE, b"prevote-A", b"A") == pv
    with pytest.raises(DoubleSign):
        guard.sign(5, 0, Step.PREVOTE, b"prevote-nil")
    with pytest.raises(Regression):
        guard.sign(4, 7, Step.PREVOTE, b"x")
    guard.prune(5)  # height 4 committed
    assert guard.records(4) == [] and guard.block(4, b"O") is None
    assert len(guard.records(5)) == 5
    guard.prune(6)
    store.close()
    store = Store(tmp_path)
    guard = SigningGuard(store, sign)
    assert guard.records(5) == [] and guard.block(5, b"A") is None
    with pytest.raises(DoubleSign):  # the last signed record survives pruning
        guard.sign(5, 1, Step.PRECOMMIT, b"precommit-C", b"C")
    with pytest.raises(Regression):
        guard.sign(5, 0, Step.PREVOTE, b"prevote-A", b"A")
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(list(Step)),
                          st.sampled_from([b"a", b"b"]), st.booleans(), st.booleans()),
                max_size=25))
def test_never_two_signatures_for_one_hrs(
        tmp_path_factory: pytest.TempPathFactory,
        requests: list[tuple[int, int, Step, bytes, bool, bool]]) -> None:
    """Whatever is asked, with restarts and prunes in between: at most one message per
    (h, r, step), one signature for it, and the log returns exactly what was signed."""
    path = tmp_path_factory.mktemp("pv")
    store = Store(path)
    guard = SigningGuard(store, sign)
    signed: dict[tuple[int, int, Step], tuple[bytes, bytes]] = {}
    pruned = 0
    for h, r, s, msg, restart, prune in requests:
        if restart:
            store.close()
            store = Store(path)
            guard = SigningGuard(store, sign)
        if prune:
            pruned = max(pruned, h)
            guard.prune(h)
        try:
            sig = guard.sign(h, r, s, msg, msg)
        except SigningRefused:
            continue
        assert signed.setdefault((h, r, s), (msg, sig)) == (msg, sig)
        for height in range(pruned, 4):
            assert {(x.round, x.step): (x.sign_bytes, x.signature)
                    for x in guard.records(height)} == {
                (rr, ss): v for (hh, rr, ss), v in signed.items() if hh == height}
    store.close()
