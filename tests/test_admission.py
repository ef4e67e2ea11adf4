"""The one admission path (``admission.check_transaction`` via ``Ledger.admit``), the block
builder's per-transaction failure handling, the gas caps and the journal replay, in process.

Network: the local development genesis with the domain contracts (admin = dev account 0,
enterprises 1 and 2, bank 3, auditor 4; dev accounts 5-9 are operator accounts of no member,
listed in ``authorisedSenders``). Blocks are produced by hand (``produce``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth.abc import SignedTransactionAPI
from eth_account import Account
from eth_utils import to_checksum_address
from helpers import ACCOUNTS, ADDRESSES, KEYS, sign
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import GRANTS_ADDRESS, MEMBERS_ADDRESS, ROLE_ENTERPRISE
from yilian.network_configs.domain import domain_alloc
from yilian.network_configs.generate import dev_members, member_seed
from yilian.network_configs.local import LOCAL_CHAIN_ID, RECORD_STORE_ADDRESS, local_genesis
from yilian.node import admission, execution_limits, producer
from yilian.node.admission import Rejected, decode_transaction
from yilian.node.chain import BlockEnv, ChainCore, ChainError
from yilian.node.config import parse_config
from yilian.node.service import Node
from yilian.node.storage import MEMPOOL
from yilian.protocol.credit_code import make_code, to_bytes32

ADMIN, ENTERPRISE, ENTERPRISE_2, BANK = 0, 1, 2, 3
OPERATOR = 7
MEMBERS = dev_members("standard", ACCOUNTS)
BANK_CODE = MEMBERS[BANK]["id"]
ENTERPRISE_CODE = MEMBERS[ENTERPRISE]["id"]
LOOP = bytes([0x5B, 0x5F, 0x56])  # JUMPDEST PUSH0 JUMP: runs until out of gas
LOOP_ADDRESS = "0x000000000000000000000000000000000000100f"
MAX_TX_GAS = 3_000_000


def genesis_doc() -> dict[str, Any]:
    doc = local_genesis(ACCOUNTS)
    doc["alloc"].update(domain_alloc([member_seed(m) for m in MEMBERS]))
    doc["alloc"][LOOP_ADDRESS] = {"balance": "0x0", "code": "0x" + LOOP.hex()}
    doc["params"]["maxTxGas"] = MAX_TX_GAS
    members = {m["account"] for m in MEMBERS}
    doc["authorisedSenders"] = [a for a in doc["authorisedSenders"] if a not in members]
    return doc


def start_node(home: Path, doc: dict[str, Any] | None = None) -> Node:
    home.mkdir(parents=True, exist_ok=True)
    if doc is not None:
        (home / "genesis.json").write_text(json.dumps(doc))
    config = {"name": "a", "genesis_file": "genesis.json", "data_dir": "data"}
    (home / "config.json").write_text(json.dumps(config))
    return Node(parse_config(config), home)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path, genesis_doc())
    try:
        yield n
    finally:
        n.store.close()


def produce(node: Node) -> None:
    producer.produce(node.ledger, node.mempool.select(node.genesis.params.max_tx_per_block))


def tx_fields(nonce: int, **kw: Any) -> dict[str, Any]:
    fields = {"type": 2, "chainId": LOCAL_CHAIN_ID, "nonce": nonce, "value": 0,
              "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
              "to": to_checksum_address(RECORD_STORE_ADDRESS), "data": b""}
    fields.update(kw)
    return fields


def raw(key: str, nonce: int, **kw: Any) -> bytes:
    return sign(key, tx_fields(nonce, **kw))


def call(key: str, nonce: int, contract: str, address: str, fn: str, *args: Any) -> bytes:
    return raw(key, nonce, to=to_checksum_address(address), gas=2_000_000,
               data=contract_abi(contract).encode_call(fn, *args))


def grant(key: str, nonce: int, owner: str) -> bytes:
    return call(key, nonce, "Grants", GRANTS_ADDRESS, "grant", to_bytes32(BANK_CODE),
                to_bytes32(owner), 2, b"\x00" * 32, "check", 2**40, 3)  # types: basic


def refused(node: Node, raw_tx: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        node.ledger.admit(raw_tx)
    return info.value


def status(node: Node, raw_tx: bytes) -> int:
    record = node.core.tx_record(bytes(decode(raw_tx).hash))
    assert record is not None, "not committed"
    return int(record.receipt.state_root == b"\x01")  # post-Byzantium: the status byte


def decode(raw_tx: bytes) -> SignedTransactionAPI:
    return decode_transaction(raw_tx, chain_id=LOCAL_CHAIN_ID, max_bytes=1 << 20)


OVERSIZED_INITCODE = dict(to=b"", gas=MAX_TX_GAS, data=b"\x00" * 50_000)


# -- finding 1: every rule the EVM applies, at admission -----------------------------------


def test_oversized_initcode_is_refused_at_admission(node: Node) -> None:
    err = refused(node, raw(KEYS[OPERATOR], 0, **OVERSIZED_INITCODE))
    assert err.reason == "initcode_size" and "49152" in err.message
    assert len(node.mempool) == 0


@pytest.mark.parametrize(("fields", "reason"), [
    # creation: py-evm's intrinsic gas leaves out the initcode word cost (2 per word)
    ({"to": b"", "data": b"\x01" * 1024, "gas": 53_000 + 16 * 1024}, "intrinsic_gas"),
    # EIP-7623: 1,000 non-zero calldata bytes cost at least 21,000 + 40,000 gas
    ({"data": b"\x01" * 1000, "gas": 21_000 + 16 * 1000 + 1}, "intrinsic_gas"),
    ({"gas": MAX_TX_GAS + 1}, "gas_limit"),
    ({"maxFeePerGas": 1, "maxPriorityFeePerGas": 2}, "invalid_transaction"),
])
def test_stateless_rules(node: Node, fields: dict[str, Any], reason: str) -> None:
    assert refused(node, raw(KEYS[OPERATOR], 0, **fields)).reason == reason


def test_nonce_at_the_eip2681_limit_is_refused(node: Node) -> None:
    err = refused(node, raw(KEYS[OPERATOR], 2**64 - 1))
    assert err.reason in {"nonce_too_high", "invalid_transaction"} and "once" in err.message


def test_a_contract_cannot_send(tmp_path: Path) -> None:
    doc = genesis_doc()
    doc["alloc"][ADDRESSES[OPERATOR]]["code"] = "0x00"
    n = start_node(tmp_path, doc)
    try:
        assert refused(n, raw(KEYS[OPERATOR], 0)).reason == "sender_not_eoa"
    finally:
        n.store.close()


def test_funds_are_checked_at_the_head(node: Node) -> None:
    fresh = Account.create()
    rules = node.ledger.rules
    node.ledger.rules = dataclasses.replace(
        rules, operators=rules.operators | {bytes.fromhex(fresh.address[2:])})
    err = refused(node, raw("0x" + bytes(fresh.key).hex(), 0, value=1))
    assert err.reason == "insufficient_funds"


# -- finding 1: building never fails because of one transaction ----------------------------


def test_a_transaction_py_evm_chokes_on_is_dropped_and_the_block_still_builds(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a transaction that slipped past admission (older rules, a missed rule) costs
    only itself: here validate_transaction is disabled, so py-evm raises OutOfGas from
    outside any computation for the oversized initcode."""
    before = raw(KEYS[OPERATOR], 0)
    bad = raw(KEYS[OPERATOR + 1], 0, **OVERSIZED_INITCODE)
    after = raw(KEYS[OPERATOR + 2], 0)
    monkeypatch.setattr("yilian.node.chain.validate_transaction", lambda tx, cap: None)
    env = BlockEnv(timestamp=1, proposer=b"\x01" * 20)
    built = node.core.build([decode(before), decode(bad), decode(after)], env)
    assert [bytes(t.hash) for t in built.block.transactions] == [
        bytes(decode(before).hash), bytes(decode(after).hash)]
    [skipped] = built.skipped
    assert not skipped.retry and "OutOfGas" in skipped.reason
    # The failed transaction left no trace: same state as a block built without it.
    built.overlay.discard()
    clean = node.core.build([decode(before), decode(after)], env)
    assert clean.block.header.state_root == built.block.header.state_root
    clean.overlay.discard()


def test_build_applies_the_stateless_rules_again(node: Node) -> None:
    bad = decode(raw(KEYS[OPERATOR], 0, **OVERSIZED_INITCODE))
    built = node.core.build([bad], BlockEnv(timestamp=1, proposer=b"\x01" * 20))
    assert not built.block.transactions
    assert built.skipped[0].reason.startswith("contract creation with 50000 bytes")
    built.overlay.discard()


def test_journal_replay_goes_through_admission(tmp_path: Path) -> None:
    """A journaled transaction that no longer passes admission (here: oversized initcode
    written by an older version, and a grant by a member suspended since) is dropped from
    the journal on restart instead of being re-admitted."""
    n = start_node(tmp_path, genesis_doc())
    good = raw(KEYS[OPERATOR], 0)
    n.ledger.admit(good)
    suspended_grant = grant(KEYS[ENTERPRISE_2], 0, MEMBERS[ENTERPRISE_2]["id"])
    n.ledger.admit(suspended_grant)
    oversized = raw(KEYS[OPERATOR + 1], 0, **OVERSIZED_INITCODE)
    n.store.put(MEMPOOL, bytes(decode(oversized).hash), oversized)
    n.store.close()
    n = start_node(tmp_path)
    try:
        assert len(n.mempool) == 3 - 1
        suspend = call(KEYS[ADMIN], 0, "Members", MEMBERS_ADDRESS, "set_active",
                       to_bytes32(MEMBERS[ENTERPRISE_2]["id"]), False)
        n.ledger.admit(suspend)
        producer.produce(n.ledger, [decode(suspend)])
    finally:
        n.store.close()
    n = start_node(tmp_path)
    try:
        journal = {k for k, _ in n.store.iterate(MEMPOOL)}
        assert journal == {bytes(decode(good).hash)}
        assert bytes(decode(good).hash) in n.mempool and len(n.mempool) == 1
    finally:
        n.store.close()


# -- finding 4: gas caps and the deadline inside execution ---------------------------------


def test_genesis_gas_caps_are_parsed_strictly() -> None:
    from yilian.node.genesis import GenesisError, parse_genesis

    doc = genesis_doc()
    assert parse_genesis(doc).params.max_tx_gas == MAX_TX_GAS
    for params, field in [({"maxTxGas": 20_000}, "params.maxTxGas"),
                          ({"maxBlockGas": 10**12}, "params.maxBlockGas"),
                          ({"maxTxGas": 60_000_000}, "params.maxTxGas"),
                          ({"maxTxGas": True}, "params.maxTxGas"),
                          ({"maxBlokGas": 1}, "params: unknown keys")]:
        bad = json.loads(json.dumps(doc))
        bad["params"] = {**{k: v for k, v in bad["params"].items()
                            if k not in ("maxTxGas", "maxBlockGas")}, **params}
        with pytest.raises(GenesisError, match=field):
            parse_genesis(bad)


class _Clock:
    """``time.monotonic`` as seen by execution: far in the future after ``after`` calls."""

    def __init__(self, after: int) -> None:
        self.calls = 0
        self.after = after

    def monotonic(self) -> float:
        self.calls += 1
        return 1e18 if self.calls > self.after else 0.0


def test_the_deadline_stops_a_transaction_inside_execution(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder's deadline is checked at jumps inside the EVM: a looping transaction is
    cut off part-way (not after its 3M gas), reverted, and dropped when it is the block's
    first; the transactions after it wait for a later block."""
    loop = decode(raw(KEYS[OPERATOR], 0, to=LOOP_ADDRESS, gas=MAX_TX_GAS))
    other = decode(raw(KEYS[OPERATOR + 1], 0))
    clock = _Clock(after=1000)
    monkeypatch.setattr(execution_limits, "time", clock)
    built = node.core.build([loop, other], BlockEnv(timestamp=1, proposer=b"\x01" * 20),
                            budget_s=3600.0)
    assert not built.block.transactions
    first, second = built.skipped
    assert first.tx is loop and not first.retry and "alone" in first.reason
    assert second.tx is other and second.retry
    assert clock.calls == 1001  # stopped at the first jump after the deadline
    built.overlay.discard()


def test_a_transaction_cut_off_after_others_waits_for_the_next_block(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    first = decode(raw(KEYS[OPERATOR + 1], 0))
    loop = decode(raw(KEYS[OPERATOR], 0, to=LOOP_ADDRESS, gas=MAX_TX_GAS))
    monkeypatch.setattr(execution_limits, "time", _Clock(after=10))
    built = node.core.build([first, loop], BlockEnv(timestamp=1, proposer=b"\x01" * 20),
                            budget_s=3600.0)
    assert list(built.block.transactions) == [first]
    [skipped] = built.skipped
    assert skipped.tx is loop and skipped.retry
    built.overlay.discard()


def test_proposals_over_the_caps_are_refused_before_executing(tmp_path: Path) -> None:
    doc = genesis_doc()
    doc["params"]["maxTxGas"] = 5_000_000
    big = start_node(tmp_path / "big", doc)
    loop = decode(raw(KEYS[OPERATOR], 0, to=LOOP_ADDRESS, gas=5_000_000))
    built = big.core.build([loop], BlockEnv(timestamp=1, proposer=b"\x01" * 20))
    assert list(built.block.transactions) == [loop]
    block = built.block
    big.store.close()
    strict = start_node(tmp_path / "strict", genesis_doc())  # maxTxGas 3,000,000
    try:
        # Same genesis block: the caps are not part of the genesis header.
        assert strict.core.genesis_hash() == block.header.parent_hash
        with pytest.raises(ChainError, match="per-transaction cap"):
            strict.core.import_block(block)
        low_block_cap = dataclasses.replace(
            strict.genesis, params=dataclasses.replace(strict.genesis.params,
                                                       max_tx_gas=5_000_000,
                                                       max_block_gas=4_000_000))
        capped = ChainCore(strict.store, low_block_cap)
        with pytest.raises(ChainError, match="the per-block cap is 4000000"):
            capped.import_block(block)
        # A header that understates its gas: execution itself stops at the cap.
        lying = block.copy(header=block.header.copy(gas_used=21_000))
        with pytest.raises(ChainError, match="OverGasCap"):
            capped.import_block(lying)
    finally:
        strict.store.close()


# -- finding 7: who may send is the Members registry at the head ---------------------------


def test_operator_and_member_accounts_send_others_are_refused(node: Node) -> None:
    node.ledger.admit(raw(KEYS[OPERATOR], 0))  # operator: in authorisedSenders, no member
    node.ledger.admit(grant(KEYS[ENTERPRISE], 0, ENTERPRISE_CODE))  # member: not in the list
    outsider = "0x" + "42" * 32
    assert refused(node, raw(outsider, 0)).reason == "unauthorised"


def test_member_added_after_genesis_transacts_at_once_and_suspension_stops_it(
        node: Node) -> None:
    newcomer = Account.create()
    key = "0x" + bytes(newcomer.key).hex()
    code = make_code("91440300MA5FAKE01")
    assert refused(node, grant(key, 0, code)).reason == "unauthorised"
    add = call(KEYS[ADMIN], 0, "Members", MEMBERS_ADDRESS, "add_member", to_bytes32(code),
               ROLE_ENTERPRISE, "新企业 Newcomer Co.", b"\x01" * 32, "", newcomer.address)
    node.ledger.admit(add)
    produce(node)
    assert status(node, add) == 1
    first = grant(key, 0, code)
    node.ledger.admit(first)  # the very next block's head already knows it
    produce(node)
    assert status(node, first) == 1
    # A second account for the same member (key rotation) transacts at once too.
    rotated = Account.create()
    add_account = call(KEYS[ADMIN], 1, "Members", MEMBERS_ADDRESS, "add_account",
                       to_bytes32(code), rotated.address)
    node.ledger.admit(add_account)
    produce(node)
    node.ledger.admit(grant("0x" + bytes(rotated.key).hex(), 0, code))
    # Suspended: refused at once, except revoking its own grants.
    suspend = call(KEYS[ADMIN], 2, "Members", MEMBERS_ADDRESS, "set_active",
                   to_bytes32(code), False)
    node.ledger.admit(suspend)
    produce(node)
    err = refused(node, grant(key, 1, code))
    assert err.reason == "suspended" and "revoke" in err.message
    revoke = call(key, 1, "Grants", GRANTS_ADDRESS, "revoke", 1)
    node.ledger.admit(revoke)


# -- property: admission and build agree ---------------------------------------------------


_kinds = st.sampled_from(["transfer", "create", "call_loop", "calldata"])


@st.composite
def _tx(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(_kinds)
    gas = draw(st.integers(0, MAX_TX_GAS + 10_000))
    fields: dict[str, Any] = {"gas": gas}
    if kind == "create":
        size = draw(st.sampled_from([0, 1, 32, 33, 49_152, 49_153, 50_000]))
        fields.update(to=b"", data=bytes([draw(st.integers(0, 255))]) * size)
    elif kind == "call_loop":
        fields.update(to=LOOP_ADDRESS)
    elif kind == "calldata":
        fields.update(data=bytes(draw(st.binary(max_size=64))) * draw(st.integers(0, 200)))
    fields["value"] = draw(st.sampled_from([0, 1]))
    return fields


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(txs=st.lists(_tx(), min_size=1, max_size=4))
def test_admission_and_build_agree(node: Node, txs: list[dict[str, Any]]) -> None:
    """Whatever admission accepts, the builder either includes or drops with a reason;
    it never raises; whatever admission refuses for a stateless reason, the builder
    refuses too."""
    decoded = []
    for i, fields in enumerate(txs):
        raw_tx = raw(KEYS[5 + i], 0, **fields)
        t = decode(raw_tx)
        try:
            admission.check_transaction(raw_tx, node.ledger.rules, node.ledger)
        except Rejected:
            try:
                admission.validate_transaction(t, node.ledger.rules.max_tx_gas)
            except Rejected as stateless:
                built = node.core.build([t], BlockEnv(timestamp=1, proposer=b"\x01" * 20))
                assert not built.block.transactions
                assert built.skipped[0].reason == stateless.message
                built.overlay.discard()
            continue
        decoded.append(t)
    built = node.core.build(decoded, BlockEnv(timestamp=1, proposer=b"\x01" * 20))
    included = {bytes(t.hash) for t in built.block.transactions}
    for s in built.skipped:
        assert s.reason
        included.add(bytes(s.tx.hash))
    assert included == {bytes(t.hash) for t in decoded}
    built.overlay.discard()



def test_slow_precompiles_are_repriced(node: Node) -> None:
    """blake2f costs 1 gas per round in Prague but runs ~25x slower per gas than the
    interpreter in py-evm: here every round costs ``PRECOMPILE_GAS_FACTORS[9]`` gas, so the
    gas caps bound its time too (figures: bench/evm_speed.py)."""
    factor = execution_limits.PRECOMPILE_GAS_FACTORS[0x09]

    def blake2f(sender: int, rounds: int) -> SignedTransactionAPI:
        data = rounds.to_bytes(4, "big") + bytes(range(64)) + bytes(144) + b"\x01"
        return decode(raw(KEYS[sender], 0, to="0x" + "00" * 19 + "09", gas=MAX_TX_GAS,
                          data=data))

    one, two = blake2f(OPERATOR, 1000), blake2f(OPERATOR + 1, 2000)
    built = node.core.build([one, two], BlockEnv(timestamp=1, proposer=b"\x01" * 20))
    first, second = built.receipts  # receipts carry cumulative gas
    gas_one, gas_two = first.gas_used, second.gas_used - first.gas_used
    assert gas_two - gas_one == factor * 1000  # Prague: 1000
    built.overlay.discard()


def test_evm_speed_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from yilian.bench import evm_speed

    evm_speed.main(["--only", "jump-loop", "blake2f", "--gas", "200000"])
    out = capsys.readouterr().out
    assert "jump-loop" in out and "blake2f" in out and "Mgas per CPU second" in out
    result = evm_speed.run("jump-loop", *evm_speed._inputs()["jump-loop"], 100_000)
    assert result.gas == 100_000 and result.wall_s > 0 and result.cpu_s >= 0
