"""A stalled chain, end to end (issue 8, a new user's finding): a local 4-center network
of real node processes loses two validators.

* ``/healthz`` stays 200 but says ``stalled`` with the reason ``no_quorum`` and the voting
  power connected; ``/readyz`` is 503;
* a grant fails at once with ``no_quorum`` (HTTP 503) naming the transaction it kept,
  instead of waiting 30 s and reporting a "failure" that later commits;
* after the two validators restart the grant commits exactly once: resending the same
  signed transaction (what the SDK does) answers with that grant and never makes another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.consortium_helpers import Cluster, running_cluster, wait_for
from yilian.contracts.addresses import GRANTS_ADDRESS
from yilian.protocol.credit_code import to_bytes32
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise, types_mask
from yilian.sdk.errors import NotCommitted

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

A, B, C, D = 0, 1, 2, 3
ENTERPRISE = "914403001922038216"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("stall")) as net:
        yield net


def base(net: Cluster, i: int) -> str:
    return str(net.info["nodes"][i]["api"])


def get(net: Cluster, i: int, path: str) -> httpx.Response:
    return httpx.get(base(net, i) + path, timeout=10)


def member(net: Cluster, role: str) -> dict[str, Any]:
    return next(m for m in net.info["members"] if m["role"] == role)


def grants_with_purpose(net: Cluster, i: int, client: Client, purpose: str) -> list[int]:
    listed = client.get("/v1/grants", subject=ENTERPRISE)
    return [g["grant_id"] for g in listed if g["purpose"] == purpose]


def test_two_of_four_down_is_reported_and_a_grant_commits_once_after_restart(
        cluster: Cluster) -> None:
    net = cluster
    ent = member(net, "enterprise")
    assert ent["id"] == ENTERPRISE
    client = Client(base(net, A), ent["privateKey"], enc_private_key=ent["encPrivateKey"])
    assert get(net, A, "/readyz").status_code == 200
    healthy = get(net, A, "/healthz").json()
    assert healthy["status"] == "ok" and healthy["chain"]["quorum"] is True

    net.stop_node(C)
    net.stop_node(D)

    def stalled() -> bool:
        h = get(net, A, "/healthz")
        return h.status_code == 200 and h.json()["status"] == "stalled"

    wait_for(stalled, 15, "node A to report a stalled chain", net.describe)
    health = get(net, A, "/healthz").json()
    assert [r["reason"] for r in health["chain"]["reasons"]] == ["no_quorum"]
    chain = health["chain"]
    assert chain["quorum"] is False
    assert (chain["votingPower"], chain["totalVotingPower"], chain["peers"]) == (2, 4, 1)
    ready = get(net, A, "/readyz")
    assert ready.status_code == 503 and ready.json()["chain"]["stalled"] is True

    purpose = f"stall-e2e {time.time()}"
    raw = client.sign_call(
        "Grants", GRANTS_ADDRESS, "grant", to_bytes32(member(net, "financial")["id"]),
        to_bytes32(ENTERPRISE), types_mask(["basic"]), b"\x00" * 32, purpose,
        int(time.time()) + 3600, 2)
    refused = httpx.post(base(net, A) + "/v1/grants", json={"raw_transaction": raw},
                         timeout=60)
    assert refused.status_code == 503, refused.text
    err = refused.json()["error"]
    assert err["reason"] == "no_quorum" and err["status"] == "pending"
    assert "kept" in err["message"] and err["tx_hash"] in err["message"]
    tx_hash = err["tx_hash"]
    # resending the same signed transaction answers its status: still pending
    again = httpx.post(base(net, A) + "/v1/grants", json={"raw_transaction": raw}, timeout=60)
    assert again.status_code == 202, again.text
    assert (again.json()["status"], again.json()["tx_hash"]) == ("pending", tx_hash)
    # the SDK resends the same bytes until its deadline, then says "not committed" (not
    # "failed") and hands back the signed transaction to resend later
    with pytest.raises(NotCommitted) as not_yet:
        Enterprise(client, ENTERPRISE).resend(raw, wait_s=3)
    assert (not_yet.value.tx_hash, not_yet.value.raw_transaction) == (tx_hash, raw)

    net.start_node(C)
    net.start_node(D)
    wait_for(lambda: get(net, A, "/readyz").status_code == 200, 60,
             "node A to be ready again", net.describe)
    granted = Enterprise(client, ENTERPRISE).resend(raw, wait_s=120)
    assert granted["status"] == "committed" and granted["tx_hash"] == tx_hash
    assert granted["purpose"] == purpose
    again = Enterprise(client, ENTERPRISE).resend(raw, wait_s=30)
    assert again["grant_id"] == granted["grant_id"]
    assert again["block_number"] == granted["block_number"]
    assert grants_with_purpose(net, A, client, purpose) == [granted["grant_id"]]
