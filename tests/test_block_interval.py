"""A BFT consortium under a steady load starts a height at most every ``blockIntervalMs``.

Found by the soak benchmark (hardening finding 10): the consensus driver started the next
height as soon as one transaction was ready, so a steady 40 tx/s became a block every
~0.25 s whatever the genesis said, and per-block work (votes, signatures, commit batches)
dominated the CPU per transaction. The genesis parameter is the period of heights under
load, like Tendermint's ``timeout_commit``; heights still start at once when idle stops.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.consortium_helpers import (
    Cluster,
    Load,
    Spawner,
    spawner_fixture,  # noqa: F401 - the spawner fixture
    wait_for,
)
from yilian.cli.launcher import free_port_range
from yilian.network_configs.generate import init_network

INTERVAL_MS = 2000
ALL4 = [0, 1, 2, 3]


def _blocks_with_txs(c: Cluster, first: int, last: int) -> list[tuple[int, int]]:
    out = []
    for n in range(first, last + 1):
        block = c.rpc(0, "eth_getBlockByNumber", [hex(n), False])
        if block["transactions"]:
            out.append((n, len(block["transactions"])))
    return out


def test_heights_under_steady_load_follow_block_interval(tmp_path: Path,
                                                         spawner: Spawner) -> None:
    out = tmp_path / "net"
    init_network(out, centers=4, base_port=free_port_range(16), block_interval_ms=INTERVAL_MS)
    genesis = json.loads((out / "genesis.json").read_text())
    assert genesis["params"]["blockIntervalMs"] == INTERVAL_MS
    c = Cluster(out, spawner)
    load: Load | None = None
    try:
        c.up()
        wait_for(lambda: c.have_peers(ALL4, 3), 30, "every node connected to the 3 others",
                 c.describe)
        start_head = c.head(0)
        assert start_head is not None
        load = Load(c, tick=0.1, max_in_flight=400).start()
        t0 = time.monotonic()
        load.wait_receipts(20, 60)  # the load is flowing
        time.sleep(10.0)
        load.stop()
        elapsed = time.monotonic() - t0
        end_head = c.head(0)
        assert end_head is not None
        blocks = _blocks_with_txs(c, start_head + 1, end_head)
        _, _, receipts = load.counts()
        # Before the fix: a block every ~0.25 s (40+ blocks of 1-10 txs in these ~12 s).
        limit = elapsed / (INTERVAL_MS / 1000) + 2
        assert len(blocks) <= limit, (
            f"{len(blocks)} blocks with transactions in {elapsed:.1f} s at blockIntervalMs="
            f"{INTERVAL_MS} (at most {limit:.0f} expected): {blocks}")
        assert sum(n for _, n in blocks) >= receipts > 20
    finally:
        if load is not None and not load.stop_event.is_set():
            load.stop_event.set()
        c.down()
