"""``net_peerCount`` answers the peers the node is connected to, as ``/healthz`` does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consortium_helpers import (
    Cluster,
    Spawner,
    spawner_fixture,  # noqa: F401 - the spawner fixture
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def three_centers(tmp_path: Path, spawner: Spawner) -> Iterator[Cluster]:
    cluster = Cluster.start_new(tmp_path / "net", spawner, nodes=3)
    try:
        yield cluster
    finally:
        cluster.down()


def test_net_peer_count_is_the_connected_peers(three_centers: Cluster) -> None:
    c = three_centers

    def both_say(n: int) -> bool:
        return all(c.peers(i) == n and c.rpc(i, "net_peerCount") == hex(n)
                   for i in range(c.size))

    wait_for(lambda: both_say(2), 60, "net_peerCount 0x2 and /healthz 2 peers on all 3 nodes",
             c.describe)
    c.stop_node(2)
    wait_for(lambda: all(c.rpc(i, "net_peerCount") == "0x1" for i in (0, 1)), 60,
             "net_peerCount 0x1 once a peer is gone", c.describe)
