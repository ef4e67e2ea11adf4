"""Native ``Grants.record_access``/``record_access_many`` (node/native_grants.py) behave as
the Vyper bytecode they replace.

Two chains run the same random sequences of domain transactions (test_domain_readers's
operations: members, publications, removals, grants, revocations, single and batched
accesses, clock ticks; many of them refused): one runs the two functions natively, the
other runs the bytecode (``YilianComputation.native_grants = False``, the reference).
Before each transaction the same call is made on both heads and must give the same
success and return or revert data; after it, the receipts must have the same status and
logs, and the chains the same state root (every contract's storage: fees are zero, so gas
leaves no trace in the state). Gas is the one allowed difference; its schedule is in
node/native_grants.py, and it stays close to the bytecode's."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_utils import ValidationError, keccak, to_canonical_address, to_checksum_address
from helpers import ADDRESSES, genesis_doc, make_node
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_domain_contracts import (
    BANK_CODE,
    CENTER_A,
    CENTER_B,
    ENTERPRISE,
    ENTERPRISE_CODE,
    _alloc,
    mid,
)
from test_domain_contracts import Domain as Harness
from test_domain_readers import OPS, RIDS, T0, _apply

from yilian.contracts.abi import contract_abi, revert_reason
from yilian.network_configs.domain import domain_alloc
from yilian.network_configs.generate import dev_members, member_seed
from yilian.network_configs.local import dev_accounts
from yilian.node.execution_limits import YilianComputation
from yilian.node.native_grants import EXPECTED_CODE, canonical_accesses
from yilian.node.native_grants import GRANTS as GRANTS_AT

GRANTS = contract_abi("Grants")


@contextmanager
def bytecode() -> Iterator[None]:
    """Run the reference: the contract's own bytecode for every function."""
    YilianComputation.native_grants = False
    try:
        yield
    finally:
        YilianComputation.native_grants = True


class Chain(Harness):
    """The harness on one side (``native`` or bytecode), keeping what each call did."""

    def __init__(self, node: Any, native: bool) -> None:
        super().__init__(node)
        self.native = native
        self.seen: list[tuple[Any, ...]] = []  # (call ok, call output, status, logs, gas)

    def send(self, who: int, contract: str, fn: str, *args: Any, **kw: Any) -> Any:
        if self.native:
            ok, out = self.execute(who, contract, fn, *args)
            receipt = super().send(who, contract, fn, *args, **kw)
        else:
            with bytecode():
                ok, out = self.execute(who, contract, fn, *args)
                receipt = super().send(who, contract, fn, *args, **kw)
        self.seen.append((ok, out, receipt.state_root, receipt.logs, receipt.gas_used))
        return receipt


@contextmanager
def two_chains() -> Iterator[tuple[Chain, Chain]]:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = [make_node(Path(tmp) / name, alloc=genesis_doc()["alloc"] | _alloc(),
                           timestamp=T0) for name in ("native", "bytecode")]
        try:
            chains = Chain(nodes[0], True), Chain(nodes[1], False)
            for chain in chains:
                chain.timestamp = T0 + 1
            yield chains
        finally:
            for node in nodes:
                node.stop()


def _run_both(ops: list[tuple[Any, ...]], *, events: bool = False
              ) -> tuple[Chain, Chain, list[int]]:
    """Apply ``ops`` to both chains, checking them equal after each (``events``: tell
    hypothesis what each access did)."""
    with two_chains() as (native, bytecode_chain):
        for op in ops:
            _apply(native, op)
            _apply(bytecode_chain, op)
            assert len(native.seen) == len(bytecode_chain.seen)
            if native.seen:
                got, want = native.seen[-1], bytecode_chain.seen[-1]
                assert got[:4] == want[:4], (op, got, want)
                if events and op[0].startswith("record_access"):
                    event(f"{op[0]}: {revert_reason(got[1]) if not got[0] else 'recorded'}")
            assert native.node.core.head().state_root == \
                bytecode_chain.node.core.head().state_root, op
        return native, bytecode_chain, []


BANK_ID, ENT_ID = mid(BANK_CODE), mid(ENTERPRISE_CODE)
# Records and grants to read, so that random accesses get past the first checks.
PRELUDE: list[tuple[Any, ...]] = [
    ("publish", CENTER_A, RIDS[0], 1, 1, ENT_ID, False),
    ("publish", CENTER_A, RIDS[1], 1, 1, ENT_ID, False),
    ("publish", CENTER_A, RIDS[0], 2, 1, ENT_ID, False),
    ("grant", ENTERPRISE, BANK_ID, ENT_ID, (2, bytes(32)), 10**7, 3),
    ("grant", ENTERPRISE, BANK_ID, ENT_ID, (0, RIDS[0]), 60, 2),
]
REQUESTS = [keccak(b"req-%d" % i) for i in range(6)] + [bytes(32)]
item = st.tuples(st.sampled_from([1, 1, 1, 2, 0, 3]), st.sampled_from(RIDS[:2]),
                 st.sampled_from([1, 1, 2, 3]),
                 st.sampled_from([BANK_ID, BANK_ID, BANK_ID, ENT_ID]),
                 st.sampled_from(REQUESTS))
ACCESS = st.one_of(
    item.map(lambda i: ("record_access", CENTER_A, *i)),
    st.lists(item, min_size=1, max_size=4).map(lambda items: (
        "record_access_many", CENTER_A, items)),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(OPS, ACCESS, ACCESS), min_size=1, max_size=20))
def test_native_and_bytecode_record_access_agree(ops: list[tuple[Any, ...]]) -> None:
    _run_both(PRELUDE + ops, events=True)


def test_a_scripted_history_reaches_every_reason_both_ways() -> None:
    """Every refusal of ``_record_access`` and the success path, single and batched, so the
    comparison is known to cover them, not only by chance."""
    bank, ent = mid(BANK_CODE), mid(ENTERPRISE_CODE)
    req = [keccak(bytes([i])) for i in range(8)]
    ops: list[tuple[Any, ...]] = [
        ("publish", CENTER_A, RIDS[0], 1, 1, ent, False),
        ("publish", CENTER_A, RIDS[1], 1, 1, ent, False),
        ("remove", CENTER_A, RIDS[1], 2),
        ("grant", ENTERPRISE, bank, ent, (2, bytes(32)), 10**7, 2),  # 1
        ("grant", ENTERPRISE, bank, ent, (2, bytes(32)), 5, 3),  # 2: expires
        ("record_access", CENTER_B, 1, RIDS[0], 1, bank, req[0]),  # not the custodian
        ("record_access", CENTER_A, 1, RIDS[0], 1, bank, bytes(32)),  # zero request id
        ("record_access", CENTER_A, 1, RIDS[0], 3, bank, req[0]),  # no such version
        ("record_access", CENTER_A, 1, RIDS[1], 2, bank, req[0]),  # tombstone
        ("record_access", CENTER_A, 9, RIDS[0], 1, bank, req[0]),  # no grant
        ("record_access", CENTER_A, 1, RIDS[0], 1, mid(ENTERPRISE_CODE), req[0]),  # grantee
        ("record_access", CENTER_A, 1, RIDS[0], 1, bank, req[0]),  # recorded
        ("record_access", CENTER_A, 1, RIDS[0], 1, bank, req[0]),  # request used
        ("record_access_many", CENTER_A, [(1, RIDS[0], 1, bank, req[1]),
                                          (1, RIDS[0], 1, bank, req[2])]),  # no reads left
        ("tick", 10**6),
        ("set_active", bank, True),  # a block at the new time: calls on the head see it
        ("record_access", CENTER_A, 2, RIDS[0], 1, bank, req[3]),  # expired
        ("grant", ENTERPRISE, bank, ent, (2, bytes(32)), 10**7, 3),  # 3
        ("revoke", ENTERPRISE, 3),
        ("record_access", CENTER_A, 3, RIDS[0], 1, bank, req[4]),  # revoked
        ("grant", ENTERPRISE, bank, ent, (2, bytes(32)), 10**7, 3),  # 4
        ("record_access_many", CENTER_A, [(4, RIDS[0], 1, bank, req[5]),
                                          (4, RIDS[0], 1, bank, req[6])]),  # recorded
        ("set_active", bank, False),
        ("record_access", CENTER_A, 4, RIDS[0], 1, bank, req[7]),  # grantee inactive
        ("set_active", bank, True),
        ("set_active", ent, False),
        ("record_access", CENTER_A, 4, RIDS[0], 1, bank, req[7]),  # owner inactive
    ]
    native, bytecode_chain, _ = _run_both(ops)
    reasons = {revert_reason(out) if not ok else "recorded" for ok, out, *_ in native.seen[5:]}
    assert {"only the record's custodian center may record an access",
            "request id must not be zero", "no such version of this record",
            "that version is a removal tombstone, not readable data", "grant not found",
            "reader is not the grantee", "recorded", "request already used",
            "item 1: no reads left", "grant expired", "grant revoked",
            "the grantee is not an active member",
            "the grant's owner is not an active member"} <= reasons, reasons
    gas = [(n[4], b[4]) for n, b in zip(native.seen, bytecode_chain.seen, strict=True)]
    print(f"\nnative / bytecode gas of each transaction: {gas}")
    assert all(n <= b for n, b in gas), gas


class _State:
    """The two things canonical_accesses asks of a state: the contracts' code."""

    def __init__(self, codes: dict[bytes, bytes]) -> None:
        self.codes = codes

    def get_code(self, address: bytes) -> bytes:
        return self.codes.get(bytes(address), b"")


def test_only_canonical_calls_run_natively() -> None:
    """Anything but the canonical ABI encoding of a plain call to Grants runs the bytecode
    (whose decoder answers it), and so does a call with value or a static one, and any
    call on a chain whose domain contracts are not these."""
    good = GRANTS.encode_call("record_access_many", [(1, RIDS[0], 1, bytes(32), bytes(32))])
    deployed = _State(dict(EXPECTED_CODE))

    class Msg:
        code_address = storage_address = GRANTS_AT
        is_create = is_delegation = is_static = False
        value = 0
        data = good

    assert canonical_accesses(deployed, Msg()) is not None  # type: ignore[arg-type]
    for change in ({"data": good[:-1]}, {"data": good + b"\0"}, {"value": 1},
                   {"is_static": True}, {"is_delegation": True},
                   {"storage_address": bytes(20)},
                   {"data": good[:4] + (64).to_bytes(32, "big") + good[36:]},
                   {"data": good[:36] + (0).to_bytes(32, "big")},
                   {"data": GRANTS.encode_call("record_access", 1, RIDS[0], 1, bytes(32),
                                               bytes(32))[:-32]}):
        msg = type("M", (Msg,), change)()
        assert canonical_accesses(deployed, msg) is None, change  # type: ignore[arg-type]
    version_over = good[:4 + 64 + 64] + (2**32).to_bytes(32, "big") + good[4 + 64 + 96:]
    msg = type("M", (Msg,), {"data": version_over})()
    assert canonical_accesses(deployed, msg) is None  # type: ignore[arg-type]
    for address in EXPECTED_CODE:  # another or no contract at any of the three addresses
        for code in (b"", EXPECTED_CODE[address][:-1]):
            state = _State({**EXPECTED_CODE, address: code})
            assert canonical_accesses(state, Msg()) is None  # type: ignore[arg-type]


def test_the_expected_code_is_what_genesis_deploys() -> None:
    alloc = domain_alloc([member_seed(m) for m in dev_members("standard", dev_accounts())])
    for address, code in EXPECTED_CODE.items():
        assert alloc[to_checksum_address(address)]["code"] == "0x" + code.hex()


def test_without_the_domain_contracts_the_bytecode_rules() -> None:
    """A genesis without Grants: a record_access to its address does what a call to an
    empty account does (succeeds, changes nothing), with native execution on or off."""
    data = GRANTS.encode_call("record_access", 1, RIDS[0], 1, bytes(32), keccak(b"r"))
    outcomes = []
    for native in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            node = make_node(Path(tmp), timestamp=T0)
            try:
                chain = Chain(node, native)
                core, head = node.core, node.core.head()
                tx = core.call_tx(to_canonical_address(ADDRESSES[CENTER_A]), GRANTS_AT, data,
                                  head, 1_000_000)
                if native:
                    computation = core.call(tx, head, 1_000_000)
                else:
                    with bytecode():
                        computation = core.call(tx, head, 1_000_000)
                outcomes.append((computation.is_success, bytes(computation.output)))
                del chain
            finally:
                node.stop()
    assert outcomes == [(True, b""), (True, b"")]


def test_a_refusal_needs_no_more_gas_natively() -> None:
    """Gas limits from tight to ample: wherever the bytecode gives a reason, the native
    path gives the same one (it never runs out of gas where the bytecode does not)."""
    bank = mid(BANK_CODE)
    items = [(9, RIDS[0], 1, bank, keccak(bytes([i]))) for i in range(32)]
    data = GRANTS.encode_call("record_access_many", items)
    with two_chains() as (native, bytecode_chain):
        for chain in (native, bytecode_chain):
            _apply(chain, ("publish", CENTER_A, RIDS[0], 1, 1, mid(ENTERPRISE_CODE), False))
        for who in (CENTER_A, ENTERPRISE):  # grant 9 missing; not a center
            compared = 0
            for gas in range(60_000, 200_000, 2_000):
                want = _outcome(bytecode_chain, who, data, gas)
                got = _outcome(native, who, data, gas)
                if want is not None and (want[0] or want[1]):  # a success or a reason
                    assert got == want, (who, gas, got, want)
                    compared += 1
            assert compared > 10


def _outcome(chain: Chain, who: int, data: bytes, gas: int) -> tuple[bool, bytes] | None:
    """(success, output) of the call with ``gas``; None below its intrinsic gas."""
    core, head = chain.node.core, chain.node.core.head()
    tx = core.call_tx(to_canonical_address(ADDRESSES[who]), GRANTS_AT, data, head, gas)
    try:
        return _run(chain, tx, gas)
    except ValidationError:
        return None


def _run(chain: Chain, tx: Any, gas: int) -> tuple[bool, bytes]:
    core, head = chain.node.core, chain.node.core.head()
    if chain.native:
        computation = core.call(tx, head, gas)
    else:
        with bytecode():
            computation = core.call(tx, head, gas)
    return computation.is_success, bytes(computation.output)
