"""The signed-request replay window (node/request_replay.py): once per (account, nonce),
remembered in LevelDB across a restart until the request expires."""

from __future__ import annotations

import time
from pathlib import Path

from yilian.node.request_replay import RequestReplay
from yilian.node.storage import REQUESTS, Store

ALICE = b"\xaa" * 20
BOB = b"\xbb" * 20
NONCE = bytes(16)


def test_a_nonce_is_served_once_per_account_and_across_a_restart(tmp_path: Path) -> None:
    later = int(time.time()) + 300
    store = Store(tmp_path)
    try:
        window = RequestReplay(store)
        assert window.first_use(ALICE, NONCE, later)
        assert not window.first_use(ALICE, NONCE, later)
        assert window.first_use(BOB, NONCE, later)  # nonces are per account
        assert window.first_use(ALICE, b"\x01" * 16, later)
    finally:
        store.close()
    store = Store(tmp_path)
    try:
        assert not RequestReplay(store).first_use(ALICE, NONCE, later)
    finally:
        store.close()


def test_expired_requests_are_pruned_and_live_ones_kept(tmp_path: Path) -> None:
    now = int(time.time())
    store = Store(tmp_path)
    try:
        window = RequestReplay(store)
        assert window.first_use(ALICE, NONCE, now - 1)  # a window's first use prunes
        assert store.get(REQUESTS, ALICE + NONCE) is None
        assert window.first_use(BOB, NONCE, now + 300)
        assert store.get(REQUESTS, BOB + NONCE) is not None
    finally:
        store.close()
