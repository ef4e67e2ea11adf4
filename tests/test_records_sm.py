"""The shared-records flow under the ``sm`` suite on real processes: SM2 key wrapping
(OpenSSL at the nodes, gmssl-based in the SDK), SM4-GCM record encryption and SM3 digests.

A smaller run than ``test_records_e2e.py`` (which uses ``standard``): one record published
by center A, read by the bank through center B under the enterprise's grant.
"""

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
from yilian.cli.launcher import free_port_range
from yilian.network_configs.generate import init_network
from yilian.protocol import envelope, standard
from yilian.sdk.center import Center
from yilian.sdk.client import Client
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.grantee import Grantee

ENTERPRISE = "914403001922038216"


@pytest.fixture
def sm_cluster(tmp_path: Path, spawner: Spawner) -> Iterator[Cluster]:
    out = tmp_path / "sm"
    init_network(out, centers=4, suite="sm", base_port=free_port_range(12))
    cluster = Cluster(out, spawner)
    try:
        cluster.up()
        wait_for(lambda: cluster.have_peers(range(4), 3), 60, "all four centers connected",
                 cluster.describe)
        yield cluster
    finally:
        cluster.down()


@pytest.mark.timeout(300)
def test_publish_grant_read_under_sm_suite(sm_cluster: Cluster) -> None:
    info = sm_cluster.info
    api = [n["api"] for n in info["nodes"]]
    members = {m["id"]: m for m in info["members"]}
    bank_m = next(m for m in info["members"] if m["role"] == "financial")
    ent_m = members[ENTERPRISE]
    assert len(bytes.fromhex(bank_m["encPublicKey"][2:])) == 64  # an SM2 public key
    a_key = "0x" + (sm_cluster.home(0) / "account_key").read_text().strip()
    payload = standard.example_record("personnel", ENTERPRISE)
    center = Center(Client(api[0], a_key))
    assert center.client.suite == "sm"
    out = center.publish_record("personnel", ENTERPRISE, payload, client_id="sm-1")
    grant = Enterprise(Client(api[1], ent_m["privateKey"]), ENTERPRISE).grant(
        bank_m["id"], types=["personnel"], purpose="sm suite", max_reads=2, valid_for_s=600)
    desk = Grantee(Client(api[1], bank_m["privateKey"], enc_private_key=bank_m["encPrivateKey"]))
    read = desk.read(out.record_id, grant["grant_id"])
    assert read.plaintext == standard.canonical_bytes("personnel", payload, subject=ENTERPRISE)
    doc = desk.version_doc(out.record_id, 1)
    ciphertext = bytes.fromhex(doc["ciphertext"][2:])
    assert doc["digest"] == "0x" + envelope.digest("sm", ciphertext).hex()  # SM3
    # SM4-GCM: 16-byte data key, the wrapped keys are SM2 ciphertexts (97 + 16 bytes)
    bundle = envelope.decode_wrapped_keys(bytes.fromhex(doc["wrapped_keys"][2:]))
    assert sorted(len(w) for w in bundle.values()) == [113, 113]
