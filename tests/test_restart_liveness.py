"""A full restart in the middle of a height must not deadlock consensus (issue 8, finding 2).

Real node processes, 4 validators. Two are killed; a transaction is submitted, so the other
two start the height and sign their round-0 messages, then spin without a quorum. Then all
four are killed with ``kill -9`` (and, in the second phase, stopped cleanly with
``yilian down``) and started again: each validator must resume with the proposal and votes
it signed (from its sign log), re-send them and run its timers, so the pending transaction
commits on all four, with one head hash.

Before the fix the restarted validators re-entered round 0 but refused to sign anything
different from what they had signed and never re-sent it: no quorum, no timeout, height
stuck for good.
"""

from __future__ import annotations

import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from tests.consortium_helpers import (
    Cluster,
    Spawner,
    assert_no_fork,
    no_equivocation_in_logs,
    sign_put,
    spawner_fixture,  # noqa: F401 - the spawner fixture
    wait_for,
    wait_heads_at_least,
)
from yilian.cli import launcher
from yilian.node.storage import SIGN_LOG, WAL

pytestmark = pytest.mark.slow

ALL4 = [0, 1, 2, 3]
SPINNING, DOWN = [0, 1], [2, 3]
SIGN_LOG_KEYS = WAL + SIGN_LOG
COMMIT_TIMEOUT = 90.0  # after a restart: processes start, connect, resume, time out rounds


@pytest.fixture
def cluster(tmp_path: Path, spawner: Spawner) -> Iterator[Cluster]:
    data_dir = tmp_path / "net"
    try:
        yield Cluster.start_new(data_dir, spawner)
    finally:
        if (data_dir / launcher.NETWORK_FILE).exists():
            launcher.down(data_dir)


def _consensus(c: Cluster, i: int) -> dict[str, Any]:
    h = c.health(i)
    return {} if h is None else dict(h.get("consensus") or {})


def _submit_and_spin(c: Cluster, nonce: int, label: bytes) -> tuple[str, int]:
    """With ``DOWN`` stopped: submit a transaction to a spinning node and wait until both
    spinning validators are in the new height past its propose step (they signed round-0
    messages) without committing it. Returns (tx hash, height)."""
    head = max(c.head(i) or 0 for i in SPINNING)
    key = str(c.info["accounts"][0]["privateKey"])
    tx = sign_put(key, int(c.info["chainId"]), nonce, label)
    assert c.rpc(SPINNING[0], "eth_sendRawTransaction", [tx.raw]) == tx.hash
    height = head + 1

    def signed_round_0() -> bool:
        states = [_consensus(c, i) for i in SPINNING]
        return all(s.get("height") == height and (s.get("round", 0) > 0 or s.get("step") in (
            "PREVOTE", "PRECOMMIT")) for s in states)

    wait_for(signed_round_0, 30, f"both spinning validators to sign at height {height}",
             lambda: c.describe(SPINNING))
    time.sleep(2.0)  # they spin: no quorum of two
    assert all(c.head(i) == head for i in SPINNING), c.describe(SPINNING)
    return tx.hash, height


def _committed_everywhere(c: Cluster, tx_hash: str, height: int, what: str) -> None:
    def committed() -> bool:
        try:
            return all(c.rpc(i, "eth_getTransactionReceipt", [tx_hash]) is not None
                       for i in ALL4)
        except Exception:
            return False

    took = wait_for(committed, COMMIT_TIMEOUT, f"the pending transaction to commit on all "
                    f"four after {what}", lambda: c.describe())
    print(f"committed {took:.1f}s after {what}")
    wait_heads_at_least(c, ALL4, height, 30, f"all four at height {height}")
    assert_no_fork(c, ALL4)
    hashes = {c.rpc(i, "eth_getBlockByNumber", [hex(height), False])["hash"] for i in ALL4}
    assert len(hashes) == 1, f"height {height} differs between nodes: {hashes}"


def test_full_restart_mid_height_commits_the_pending_transaction(cluster: Cluster) -> None:
    c = cluster
    for i in DOWN:
        assert c.stop_node(i, signal.SIGKILL) == -signal.SIGKILL
    tx_hash, height = _submit_and_spin(c, 0, b"restart-kill")

    # every validator killed mid-height, then all four started again
    for i in SPINNING:
        assert c.stop_node(i, signal.SIGKILL) == -signal.SIGKILL
    c.up()
    _committed_everywhere(c, tx_hash, height, "kill -9 of all four")

    # the same with a clean `yilian down` / `yilian up` in the middle of a height
    for i in DOWN:
        c.stop_node(i, signal.SIGKILL)
    tx_hash, height = _submit_and_spin(c, 1, b"restart-clean")
    c.down()
    c.up()
    _committed_everywhere(c, tx_hash, height, "a clean down and up")
    no_equivocation_in_logs(c)

    # the sign log of every committed height was pruned with its block
    heads = {i: c.head(i) or 0 for i in ALL4}
    c.down()
    for i in ALL4:
        db = plyvel.DB(str(c.home(i) / "data" / "leveldb"), create_if_missing=False)
        try:
            logged = {struct.unpack(">Q", k[len(SIGN_LOG_KEYS):len(SIGN_LOG_KEYS) + 8])[0]
                      for k, _ in db.iterator(prefix=SIGN_LOG_KEYS)}
        finally:
            db.close()
        assert all(h > heads[i] for h in logged), (c.name(i), heads[i], logged)
