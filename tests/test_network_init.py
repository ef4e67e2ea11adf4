"""`yilian network init`: private keys only in their own node directory with mode 0600,
public keys in genesis and configs, every config loads, nothing is overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from yilian.crypto.suites import get_suite, load_private_key
from yilian.network_configs.generate import NODE_KEY_FILE, NetworkInitError, init_network
from yilian.node.config import load_config
from yilian.node.genesis import load_genesis


@pytest.mark.parametrize("suite", ["standard", "sm"])
def test_init_writes_keys_genesis_and_configs(tmp_path: Path, suite: str) -> None:
    out = tmp_path / "net"
    net = init_network(out, centers=4, observers=1, suite=suite, base_port=20000)
    genesis = load_genesis(out / "genesis.json")
    assert genesis.suite == suite
    assert [v.name for v in genesis.validators] == [f"center-{i}" for i in range(1, 5)]
    assert [o.name for o in genesis.observers] == ["observer-1"]
    impl = get_suite(suite)
    private_hex = []
    for entry in net["nodes"]:
        home = Path(entry["home"])
        key_file = home / NODE_KEY_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        private = load_private_key(key_file, impl)
        private_hex.append(private.hex())
        assert "0x" + impl.public_key(private).hex() == entry["nodeKey"]
        config = load_config(home)
        assert config.validator == (entry["role"] == "validator")
        assert {p.name for p in config.peers} == {e["name"] for e in net["nodes"]} - {
            entry["name"]}
        assert load_genesis(home / "genesis.json").digest == genesis.digest
    # no private key appears in any shared or other node's file
    for path in out.rglob("*.json"):
        text = path.read_text()
        assert not any(k in text for k in private_hex), path


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("x")
    with pytest.raises(NetworkInitError, match="not empty"):
        init_network(tmp_path, centers=4)


def test_ports_do_not_collide(tmp_path: Path) -> None:
    net = init_network(tmp_path / "n", centers=7, base_port=30000)
    ports = [int(e["rpc"].rsplit(":", 1)[1].split("/")[0]) for e in net["nodes"]]
    ports += [int(e["p2p"].rsplit(":", 1)[1]) for e in net["nodes"]]
    assert len(set(ports)) == len(ports) == 14
    assert json.loads((tmp_path / "n" / "network.json").read_text())["suite"] == "standard"


def test_genesis_carries_gas_caps_and_only_operator_accounts_in_the_allowlist(
        tmp_path: Path) -> None:
    """The registry decides for members (finding 7): no member account is in
    ``authorisedSenders``, which keeps only the development accounts of no member; the gas
    caps are written explicitly (finding 4)."""
    net = init_network(tmp_path / "n", centers=4, base_port=21000)
    doc = json.loads((tmp_path / "n" / "genesis.json").read_text())
    assert doc["params"]["maxTxGas"] == 3_000_000
    assert doc["params"]["maxBlockGas"] == 50_000_000
    genesis = load_genesis(tmp_path / "n" / "genesis.json")
    assert genesis.params.max_tx_gas == 3_000_000
    member_accounts = {m["account"] for m in net["members"]} | {
        n["center"]["account"] for n in net["nodes"] if n.get("center")}
    assert member_accounts
    allowed = {a.lower() for a in doc["authorisedSenders"]}
    assert not allowed & {a.lower() for a in member_accounts}
    assert allowed == {a["address"].lower() for a in net["accounts"]} - {
        a.lower() for a in member_accounts}
