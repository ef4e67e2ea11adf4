"""``eth_call`` and ``eth_estimateGas``: execution without committing, bounded in gas and time.

Each execution gets ``min(request's gas, rpc.gas_cap, gas left in the batch)`` gas and
stops at ``rpc.call_timeout_ms`` (or the batch's deadline, if earlier) through a deadline
checked inside py-evm's opcode loop (:mod:`yilian.node.execution_limits`). Every refusal
is a JSON-RPC error naming the limit: -32005 for a limit, -32602 for a call object the EVM
would refuse before running it (e.g. initcode over EIP-3860's 49152 bytes), -32000 for an
execution failure, 3 for a revert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eth.abc import BlockHeaderAPI
from eth.exceptions import Revert, VMError
from eth_utils import ValidationError

import yilian.api.rpc_params as P
from yilian.api.rpc_errors import (
    ExecutionReverted,
    InvalidParams,
    LimitExceeded,
    RpcError,
    ServerError,
)
from yilian.api.rpc_framing import WorkBudget
from yilian.node.execution_limits import OutOfTime
from yilian.node.node_api import NodeAPI

T = TypeVar("T")
MAX_INITCODE_SIZE = 49_152  # EIP-3860 (Shanghai): 2 * MAX_CODE_SIZE
ANYONE = b"\x00" * 20  # the sender of a call object without "from"


def _check_args(args: P.CallArgs, where: str) -> None:
    if args.to is None and args.data is not None and len(args.data) > MAX_INITCODE_SIZE:
        raise InvalidParams(f"invalid params: {where}.data is initcode of {len(args.data)} "
                            f"bytes, over the EIP-3860 limit of {MAX_INITCODE_SIZE} bytes")


def _too_slow(method: str, exc: OutOfTime) -> LimitExceeded:
    return LimitExceeded(f"{method} ran past its time limit of {(exc.limit_s or 0) * 1000:g} ms "
                         "(rpc.call_timeout_ms or rpc.batch_timeout_ms); lower the call's "
                         "gas or ask the operator to raise the limit")


def execution_error(error: Exception, output: bytes) -> RpcError:
    if isinstance(error, Revert):
        data = bytes(output or (error.args[0] if error.args and isinstance(error.args[0], bytes)
                                else b""))
        return ExecutionReverted(data)
    return ServerError(f"execution failed: {type(error).__name__} {error}".strip())


def _execute(method: str, invalid: str, run: Callable[[], T]) -> T:
    """``run()``, its failures before or during execution as JSON-RPC errors."""
    try:
        return run()
    except OutOfTime as exc:
        raise _too_slow(method, exc) from None
    except ValidationError as exc:
        raise ServerError(f"{invalid}: {exc}") from None
    except VMError as exc:  # raised before the message runs (e.g. intrinsic gas)
        raise execution_error(exc, b"") from None


def eth_call(node: NodeAPI, args: P.CallArgs, header: BlockHeaderAPI, budget: WorkBudget
             ) -> bytes:
    _check_args(args, "params[0]")
    gas = budget.call_gas(args.gas)
    computation = _execute("eth_call", "call is invalid", lambda: node.ledger.call_as(
        args.from_ or ANYONE, args.to or b"", args.data or b"", header, gas,
        value=args.value or 0, deadline=budget.call_deadline()))
    budget.spend_gas(gas - computation.get_gas_remaining())  # intrinsic gas included
    if computation.is_error:
        raise execution_error(computation.error, computation.output)
    return bytes(computation.output)


def eth_estimate_gas(node: NodeAPI, args: P.CallArgs, header: BlockHeaderAPI,
                     budget: WorkBudget) -> int:
    _check_args(args, "params[0]")
    cap = min(budget.call_gas(args.gas), node.genesis.params.max_tx_gas)
    estimate = _execute("eth_estimateGas", "cannot estimate gas",
                        lambda: node.ledger.estimate_gas_as(
                            args.from_ or ANYONE, args.to or b"", args.data or b"", header,
                            cap, value=args.value or 0, deadline=budget.call_deadline()))
    budget.spend_gas(estimate)  # a lower bound of the work: the search ran it ~log2(cap) times
    return estimate
