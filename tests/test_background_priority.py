"""LevelDB's compaction thread runs at a lower priority than the node's Python threads
(node/background_priority.py)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import plyvel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.node import background_priority as bp
from yilian.node.storage import StorageError, Store

linux = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="per-thread nice values are Linux's")


@given(st.integers(-5, 30))
def test_the_nice_value_is_0_to_19_and_a_bad_one_names_the_variable(value: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(bp.ENV_VAR, f" {value} ")
        if 0 <= value <= 19:
            assert bp.nice_from_env() == value
        else:
            with pytest.raises(ValueError, match=bp.ENV_VAR):
                bp.nice_from_env()


def test_the_default_and_a_word(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(bp.ENV_VAR, raising=False)
    assert bp.nice_from_env() == bp.DEFAULT_NICE == 10
    monkeypatch.setenv(bp.ENV_VAR, "low")
    with pytest.raises(StorageError, match="YILIAN_COMPACTION_NICE must be a whole number"):
        Store(tmp_path / "db")


def _native_tids() -> set[int]:
    tids = {int(p.name) for p in Path(f"/proc/{os.getpid()}/task").iterdir()}
    return tids - {t.native_id for t in threading.enumerate()}


@linux
def test_leveldbs_own_thread_is_lowered_and_python_threads_are_not(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "db"), create_if_missing=True, write_buffer_size=64 * 1024)
    try:
        for _ in range(5_000):  # several memtable flushes: LevelDB starts its thread
            db.put(os.urandom(16), os.urandom(64))
        assert _native_tids(), "LevelDB started no thread of its own"
        base = os.getpriority(os.PRIO_PROCESS, 0)  # this process may run niced already
        target = min(base + 3, 19)
        threads = bp.NativeThreads(target)
        lowered = threads.check()
        assert set(lowered) == _native_tids() and lowered
        assert all(os.getpriority(os.PRIO_PROCESS, tid) >= target for tid in lowered)
        for t in threading.enumerate():  # the Python threads keep their priority
            assert os.getpriority(os.PRIO_PROCESS, t.native_id or 0) == base
        assert threads.check() == []  # each thread once
    finally:
        db.close()


def test_zero_leaves_every_thread_alone() -> None:
    assert bp.NativeThreads(0).check() == []
