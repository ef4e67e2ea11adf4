"""Tests for yilian.contracts: artifact freshness, the runtime loader, and RecordStore on py-evm."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth._utils.address import generate_contract_address
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.typing import AccountDetails
from eth.vm.forks.prague import PragueVM
from eth_abi import decode, encode
from eth_keys import keys
from eth_typing import Address
from eth_utils import keccak

from yilian.contracts import artifacts

CHAIN_ID = 1337
PRIVATE_KEY = keys.PrivateKey(b"\x11" * 32)
SENDER = Address(PRIVATE_KEY.public_key.to_canonical_address())
RECORD_PUT_TOPIC = keccak(text="RecordPut(bytes32,address,bytes32)")


# --- (a) committed artifacts match the sources --------------------------------------------


def test_committed_artifacts_are_fresh() -> None:
    pytest.importorskip("vyper")
    from yilian.contracts import build

    assert build.check() == [], "run: python -m yilian.contracts.build"
    assert artifacts.available() == [p.stem for p in build.source_paths()]


def test_check_reports_stale_missing_and_orphaned(tmp_path: Path) -> None:
    pytest.importorskip("vyper")
    from yilian.contracts import build

    src, out = tmp_path / "src", tmp_path / "artifacts"
    src.mkdir()
    shutil.copy(build.SRC_DIR / "RecordStore.vy", src)
    assert build.check(src, out) == [
        "missing: RecordStore.json (source RecordStore.vy has no artifact)"
    ]

    assert build.build(src, out) == ["wrote: RecordStore.json"]
    assert build.check(src, out) == []
    assert build.build(src, out) == []  # idempotent
    text = (out / "RecordStore.json").read_text()
    assert text == (build.ARTIFACTS_DIR / "RecordStore.json").read_text()  # path-independent
    assert text.endswith("}\n")
    assert set(json.loads(text)) == build.ARTIFACT_KEYS

    (src / "RecordStore.vy").write_text((src / "RecordStore.vy").read_text() + "\n# edit\n")
    (out / "Gone.json").write_text("{}\n")
    problems = build.check(src, out)
    assert len(problems) == 2
    assert problems[0].startswith("stale:") and "sourceSha256" in problems[0]
    assert problems[1].startswith("orphan:") and "Gone.json" in problems[1]


# --- runtime loader ------------------------------------------------------------------------


def test_load_record_store() -> None:
    art = artifacts.load("RecordStore")
    assert art.name == "RecordStore"
    assert art.bytecode and art.deployed_bytecode
    names = {(e["type"], e.get("name")) for e in art.abi}
    assert {("function", "put"), ("function", "get"), ("event", "RecordPut")} <= names
    assert "RecordStore" in artifacts.available()


def test_load_missing_names_available() -> None:
    with pytest.raises(artifacts.ArtifactNotFound) as info:
        artifacts.load("NoSuchContract")
    assert isinstance(info.value, KeyError)
    assert "NoSuchContract" in str(info.value) and "RecordStore" in str(info.value)
    with pytest.raises(KeyError):
        artifacts.load("../compiled/RecordStore")


def test_loader_does_not_need_vyper() -> None:
    code = (
        "import sys; sys.modules['vyper'] = None\n"  # any `import vyper` now fails
        "from yilian.contracts import artifacts\n"
        "assert artifacts.load('RecordStore').bytecode\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- (b) RecordStore on an in-memory py-evm chain ---------------------------------------------


@dataclass
class Result:
    success: bool
    gas_used: int
    logs: list[Any]
    output: bytes


class EvmHarness:
    """A single-account PragueVM chain with a zero base fee."""

    def __init__(self) -> None:
        chain_class = MiningChain.configure(
            __name__="YilianTestChain",
            vm_configuration=((0, PragueVM),),
            chain_id=CHAIN_ID,
        )
        genesis: dict[str, Any] = {
            "difficulty": 0,
            "gas_limit": 30_000_000,
            "base_fee_per_gas": 0,
            "timestamp": 1,
        }
        state: dict[Address, AccountDetails] = {
            SENDER: {"balance": 10**21, "nonce": 0, "code": b"", "storage": {}}
        }
        self.chain = cast(MiningChain, chain_class.from_genesis(AtomicDB(), genesis, state))
        self.nonce = 0

    def send(self, to: Address, data: bytes, gas: int = 1_000_000) -> Result:
        vm = self.chain.get_vm()
        tx = vm.create_unsigned_transaction(
            nonce=self.nonce, gas_price=0, gas=gas, to=to, value=0, data=data
        ).as_signed_transaction(PRIVATE_KEY, chain_id=CHAIN_ID)
        self.nonce += 1
        _, receipt, computation = self.chain.apply_transaction(tx)
        block = self.chain.mine_block()
        assert tx.hash in [t.hash for t in block.transactions]
        return Result(
            computation.is_success, receipt.gas_used, list(receipt.logs), computation.output
        )

    def call(self, to: Address, data: bytes) -> bytes:
        vm = self.chain.get_vm()
        tx = vm.create_unsigned_transaction(
            nonce=self.nonce, gas_price=0, gas=1_000_000, to=to, value=0, data=data
        ).as_signed_transaction(PRIVATE_KEY, chain_id=CHAIN_ID)
        out: bytes = self.chain.get_transaction_result(tx, self.chain.get_canonical_head())
        return out

    def code_at(self, address: Address) -> bytes:
        code: bytes = self.chain.get_vm().state.get_code(address)
        return code


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def test_record_store_put_get_and_event() -> None:
    art = artifacts.load("RecordStore")
    evm = EvmHarness()

    deploy = evm.send(Address(b""), art.bytecode)
    assert deploy.success
    contract = generate_contract_address(SENDER, 0)
    assert evm.code_at(contract) == art.deployed_bytecode

    key, value = keccak(b"record-1"), keccak(b"payload-1")
    put = evm.send(
        contract, selector("put(bytes32,bytes32)") + encode(["bytes32"] * 2, [key, value])
    )
    assert put.success
    assert put.gas_used < 70_000, put.gas_used  # 21k intrinsic + 2 fresh SSTOREs + LOG3

    (log,) = put.logs
    assert log.address == contract
    topics = [t.to_bytes(32, "big") for t in log.topics]
    assert topics == [RECORD_PUT_TOPIC, key, b"\x00" * 12 + SENDER]
    assert decode(["bytes32"], log.data) == (value,)

    get_sel = selector("get(bytes32)")
    assert decode(["bytes32"], evm.call(contract, get_sel + encode(["bytes32"], [key]))) == (value,)
    records_sel = selector("records(bytes32)")
    assert evm.call(contract, records_sel + encode(["bytes32"], [key])) == value
    assert evm.call(contract, get_sel + encode(["bytes32"], [b"\x00" * 32])) == b"\x00" * 32
    assert decode(["uint256"], evm.call(contract, selector("writes()"))) == (1,)

    # Overwrite: value replaced, counter incremented, cheaper (warm-from-nonzero slots).
    value2 = keccak(b"payload-2")
    put2 = evm.send(
        contract, selector("put(bytes32,bytes32)") + encode(["bytes32"] * 2, [key, value2])
    )
    assert put2.success and put2.gas_used < put.gas_used
    assert evm.call(contract, get_sel + encode(["bytes32"], [key])) == value2
    assert decode(["uint256"], evm.call(contract, selector("writes()"))) == (2,)

    # Unknown selectors revert (no fallback function).
    assert not evm.send(contract, b"\xde\xad\xbe\xef", gas=100_000).success
