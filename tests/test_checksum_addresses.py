"""Every address the project writes down is an EIP-55 checksum address (web3.py refuses others).

Two sources: the address constants in the package's source (every 40-hex string literal in
api/, node/, contracts/, network-configs/, sdk/, consensus/, bench/), and every address
written to a generated network (network.json and genesis.json of ``yilian network init``
and of the single-node ``yilian up``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from yilian.cli.launcher import init_local
from yilian.network_configs.generate import init_network

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("api", "node", "contracts", "network-configs", "sdk", "consensus", "bench")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _source_addresses() -> Iterator[tuple[str, str]]:
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for m in ADDRESS.finditer(node.value):
                        # a longer hex string (a hash, a key) is not an address
                        if not re.match(r"[0-9a-fA-F]", node.value[m.end():m.end() + 1]):
                            yield f"{path.relative_to(ROOT)}:{node.lineno}", m.group()


def _json_addresses(doc: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string (value or key) that is exactly a 0x address, with its JSON path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(key, str) and ADDRESS.fullmatch(key):
                yield f"{where} (key)", key
            yield from _json_addresses(value, f"{where}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _json_addresses(value, f"{where}[{i}]")
    elif isinstance(doc, str) and ADDRESS.fullmatch(doc):
        yield where, doc


def test_every_address_constant_is_checksummed() -> None:
    found = list(_source_addresses())
    assert any("addresses.py" in where for where, _ in found)  # the scan sees the constants
    bad = [f"{where}: {a} (should be {Web3.to_checksum_address(a)})"
           for where, a in found if not Web3.is_checksum_address(a)]
    assert not bad, "not EIP-55 checksum addresses:\n" + "\n".join(bad)


def _check_files(out: Path) -> int:
    count = 0
    bad = []
    for path in sorted(out.rglob("*.json")):
        for where, a in _json_addresses(json.loads(path.read_text()), path.name):
            count += 1
            if not Web3.is_checksum_address(a):
                bad.append(f"{path.relative_to(out)} {where}: {a}")
    assert not bad, "not EIP-55 checksum addresses:\n" + "\n".join(bad)
    return count


@pytest.mark.parametrize("suite", ["standard", "sm"])
def test_every_address_in_a_generated_network_is_checksummed(tmp_path: Path, suite: str) -> None:
    network = init_network(tmp_path / "net", centers=2, suite=suite, base_port=21000)
    assert Web3.is_checksum_address(network["contracts"]["Records"])
    assert _check_files(tmp_path / "net") > 20


def test_every_address_of_a_single_node_network_is_checksummed(tmp_path: Path) -> None:
    network = init_local(tmp_path / "one", 1, 21100)
    assert Web3.is_checksum_address(network["contracts"]["Records"])
    assert _check_files(tmp_path / "one") > 20
