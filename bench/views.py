"""View calls/s, storage readers against the EVM: ``python -m yilian.bench.views``.

Builds an in-process single-center chain (``yilian network init`` in a temporary
directory, the node opened in this process, not started), commits one published record and
one grant to a bank, then calls ``Members.member_of`` and ``Grants.check`` many times each
way and prints calls/s (wall) and CPU µs per call (``time.process_time``):

* **evm, cold**: the contract's own view through py-evm, with the node's per-head view cache
  emptied before each call (what each first question after a block costs);
* **reader, cold**: :mod:`yilian.node.domain_readers` on a fresh
  :class:`~yilian.node.head_state.HeadState` per call (every storage word read from the
  trie in LevelDB);
* **reader, warm**: the node's own path, one ``HeadState`` per head with its words
  memoised (what every later question in the same block costs).

The answers of both paths are checked equal before timing. No assertions on speed: figures
only (docs/records.md "Performance" quotes them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_canonical_address, to_checksum_address

from yilian.contracts.abi import contract_abi
from yilian.contracts.addresses import DOMAIN_TX_GAS, GRANTS_ADDRESS, RECORDS_ADDRESS
from yilian.network_configs.generate import init_network
from yilian.node.chain import BlockEnv
from yilian.node.config import load_config
from yilian.node.domain import Domain
from yilian.node.head_state import HeadState
from yilian.node.service import Node
from yilian.protocol.credit_code import to_bytes32
from yilian.protocol.record_ids import record_id_for


def _send(node: Node, key: str, nonce: int, to: str, contract: str, fn: str,
          *args: Any) -> None:
    raw = Account.sign_transaction({
        "type": 2, "chainId": node.genesis.chain_id, "nonce": nonce,
        "to": to_checksum_address(to), "value": 0, "gas": DOMAIN_TX_GAS,
        "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
        "data": contract_abi(contract).encode_call(fn, *args)}, key).raw_transaction
    tx = node.core.vm_class.get_transaction_builder().decode(bytes(raw))
    head = node.core.head()
    built = node.core.build([tx], BlockEnv(max(int(time.time()), head.timestamp + 1),
                                           node.proposer))
    committed = node.ledger.commit_block(built)
    (receipt,) = committed.receipts
    if receipt.state_root != b"\x01":
        raise RuntimeError(f"{contract}.{fn} failed while setting up the benchmark")


def _timed(label: str, calls: int, fn: Callable[[], Any]) -> tuple[str, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return label, calls / wall, 1e6 * cpu / calls


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="yilian-bench-views-"))
    try:
        net = init_network(tmp / "net", centers=1)
        home = Path(net["nodes"][0]["home"])
        node = Node(load_config(home), home)
        try:
            center = to_bytes32(net["nodes"][0]["center"]["id"])
            center_key = "0x" + (home / "account_key").read_text().strip()
            members = {m["role"]: m for m in net["members"]}
            ent, bank = members["enterprise"], members["financial"]
            rid = record_id_for(center, "bench-views")
            _send(node, center_key, 0, RECORDS_ADDRESS, "Records", "publish", rid, 1, 1,
                  to_bytes32(ent["id"]), to_bytes32(ent["id"]), 1, b"\x11" * 32, b"sealed",
                  b"\x07" * 8)
            _send(node, ent["privateKey"], 0, GRANTS_ADDRESS, "Grants", "grant",
                  to_bytes32(bank["id"]), to_bytes32(ent["id"]), 2, bytes(32), "bench",
                  int(time.time()) + 86_400, 1000)
            bank_account = bytes(to_canonical_address(bank["account"]))
            bank_id = to_bytes32(bank["id"])
            evm, fast = Domain(node.core, views="evm"), Domain(node.core, views="reader")
            readers = fast.readers
            assert readers is not None
            if (evm.member_of(bank_account), evm.check_grant(1, rid, bank_id)) != (
                    fast.member_of(bank_account), fast.check_grant(1, rid, bank_id)):
                raise RuntimeError("reader and EVM disagree; run tests/test_domain_readers.py")
            now = int(time.time())

            def evm_cold(call: Callable[[], Any]) -> Callable[[], Any]:
                def fn() -> Any:
                    evm._cache.clear()
                    return call()
                return fn

            def fresh() -> HeadState:
                return HeadState(node.core.state_db(), node.core.head())

            n, rows = args.calls, []
            rows.append(_timed("member_of   evm, cold", n // 10,
                               evm_cold(lambda: evm.member_of(bank_account))))
            rows.append(_timed("member_of   reader, cold", n,
                               lambda: readers.member_of(fresh(), bank_account)))
            rows.append(_timed("member_of   reader, warm", n,
                               lambda: fast.member_of(bank_account)))
            rows.append(_timed("Grants.check evm, cold", n // 10,
                               evm_cold(lambda: evm.check_grant(1, rid, bank_id))))
            rows.append(_timed("Grants.check reader, cold", n,
                               lambda: readers.check(fresh(), 1, rid, bank_id, now=now)))
            rows.append(_timed("Grants.check reader, warm", n,
                               lambda: fast.check_grant(1, rid, bank_id)))
        finally:
            node.stop()
        print("yilian view benchmark (one process; CPU from time.process_time)")
        for label, rate, cpu_us in rows:
            print(f"  {label:<28} {rate:>10,.0f} calls/s   {cpu_us:>9.1f} µs CPU/call")
        for view in ("member_of", "Grants.check"):
            base = next(r for r in rows if r[0].startswith(view) and "evm" in r[0])
            for r in rows:
                if r[0].startswith(view) and "reader" in r[0]:
                    print(f"  {r[0]:<28} {base[2] / r[2]:>8.0f}x less CPU than the EVM")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m yilian.bench.views",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=20_000,
                   help="calls per reader measurement (the EVM gets a tenth)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.calls < 10:
        print("--calls must be at least 10", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
