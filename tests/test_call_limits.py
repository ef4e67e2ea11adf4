"""``eth_call`` / ``eth_estimateGas`` and batches are bounded (issue 8, finding 9 and the
initcode part of 11): gas per call, wall time per call (enforced inside py-evm's opcode
loop), and gas and time per batch; each refusal is a JSON-RPC error naming the limit.

The calls run ``JUMPDEST PUSH1 0 JUMP`` as initcode: a loop that burns whatever gas it gets
(~4 M opcodes for 50 M gas, 16 s before the fix).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from helpers import ADDRESSES, make_client, make_node, rpc_body

from yilian.api.rpc_calls import MAX_INITCODE_SIZE
from yilian.node.execution_limits import Deadline, OutOfTime
from yilian.node.service import Node

pytestmark = pytest.mark.timeout(180)

LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: loops until out of gas
CALL_TIMEOUT_MS = 300


def _client(tmp_path: Path, rpc: dict[str, Any]) -> Iterator[tuple[Node, TestClient]]:
    node = make_node(tmp_path, config={"rpc": rpc})
    try:
        with make_client(node) as client:
            yield node, client
    finally:
        node.stop()


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[tuple[Node, TestClient]]:
    yield from _client(tmp_path, {"call_timeout_ms": CALL_TIMEOUT_MS, "batch_timeout_ms": 800})


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[Node, TestClient]]:
    yield from _client(tmp_path, {"gas_cap": 300_000, "batch_gas": 700_000})


def post(client: TestClient, payload: Any) -> Any:
    r = client.post("/rpc", content=json.dumps(payload),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def loop_call(method: str = "eth_call", req_id: int = 1, gas: str | None = None) -> Any:
    call: dict[str, Any] = {"from": ADDRESSES[0], "data": LOOP}
    if gas is not None:
        call["gas"] = gas
    return rpc_body(method, [call, "latest"] if method == "eth_call" else [call], req_id)


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_a_call_that_runs_too_long_is_stopped_inside_execution(
        timed: tuple[Node, TestClient], method: str) -> None:
    _, client = timed
    err = post(client, loop_call(method))["error"]
    assert err["code"] == -32005, err
    assert "call_timeout_ms" in err["message"] and str(CALL_TIMEOUT_MS) in err["message"]
    # the node is fine afterwards
    assert post(client, rpc_body("eth_chainId"))["result"].startswith("0x")


def test_a_batch_shares_one_deadline(timed: tuple[Node, TestClient]) -> None:
    _, client = timed
    answers = post(client, [loop_call(req_id=i) for i in range(4)] + [rpc_body("eth_chainId",
                                                                              req_id=9)])
    assert [a["id"] for a in answers] == [0, 1, 2, 3, 9]
    assert all(a["error"]["code"] == -32005 for a in answers), answers
    # 800 ms for the batch: the first two calls use it up, the rest never start
    assert "before this call started" in answers[-1]["error"]["message"]
    assert "batch_timeout_ms" in answers[-1]["error"]["message"]


def test_gas_per_call_and_per_batch_are_capped(metered: tuple[Node, TestClient]) -> None:
    _, client = metered
    single = post(client, loop_call(gas=hex(10**9)))["error"]
    assert single["code"] == -32000 and "OutOfGas" in single["message"], single  # 300k, spent
    answers = post(client, [loop_call(req_id=i) for i in range(4)])
    # 300k + 300k + the 100k left; the fourth finds the batch's 700k spent
    assert [a["error"]["code"] for a in answers] == [-32000, -32000, -32000, -32005], answers
    assert "batch_gas" in answers[3]["error"]["message"]
    assert "700000" in answers[3]["error"]["message"]


def test_batches_are_capped_in_size(metered: tuple[Node, TestClient]) -> None:
    node, client = metered
    limit = node.config.rpc.max_batch
    assert limit == 1000  # geth's default; the batch's work is bounded by its budget
    err = post(client, [rpc_body("eth_chainId", req_id=i) for i in range(limit + 1)])["error"]
    assert err["code"] == -32005 and "max_batch" in err["message"]


@pytest.mark.parametrize("method", ["eth_call", "eth_estimateGas"])
def test_oversized_initcode_is_invalid_params_naming_the_limit(
        metered: tuple[Node, TestClient], method: str) -> None:
    _, client = metered
    call = {"from": ADDRESSES[0], "data": "0x" + "00" * (MAX_INITCODE_SIZE + 1)}
    params = [call, "latest"] if method == "eth_call" else [call]
    err = post(client, rpc_body(method, params))["error"]
    assert err["code"] == -32602 and str(MAX_INITCODE_SIZE) in err["message"], err
    call["data"] = "0x" + "00" * MAX_INITCODE_SIZE  # at the limit: runs (STOPs at once)
    answer = post(client, rpc_body(method, params))
    assert "result" in answer, answer


def test_a_deadline_stops_execution_without_touching_committed_state(
        metered: tuple[Node, TestClient]) -> None:
    node, _ = metered
    head = node.core.head()
    with pytest.raises(OutOfTime, match=r"0\.05 s"):
        node.ledger.call_as(b"\x00" * 20, b"", bytes.fromhex(LOOP[2:]), head, 50_000_000,
                            deadline=Deadline.after(0.05))
    assert node.core.head().state_root == head.state_root
