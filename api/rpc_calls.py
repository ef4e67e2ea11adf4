"""``eth_call`` and ``eth_estimateGas``: execution without committing, bounded in gas and time.

Each execution gets ``min(request's gas, rpc.gas_cap, gas left in the batch)`` gas and
stops at ``rpc.call_timeout_ms`` (or the batch's deadline, if earlier) through a deadline
checked inside py-evm's opcode loop (:mod:`yilian.node.execution_limits`). Every refusal
is a JSON-RPC error naming the limit: -32005 for a limit, -32602 for a call object the EVM
would refuse before running it (e.g. initcode over EIP-3860's 49152 bytes), -32000 for an
execution failure, 3 for a revert.
"""

from __future__ import annotations

from eth.abc import BlockHeaderAPI, SignedTransactionAPI
from eth.exceptions import Revert, VMError
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
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
from yilian.node.service import Node

MAX_INITCODE_SIZE = 49_152  # EIP-3860 (Shanghai): 2 * MAX_CODE_SIZE


def _check_args(args: P.CallArgs, where: str) -> None:
    if args.to is None and args.data is not None and len(args.data) > MAX_INITCODE_SIZE:
        raise InvalidParams(f"invalid params: {where}.data is initcode of {len(args.data)} "
                            f"bytes, over the EIP-3860 limit of {MAX_INITCODE_SIZE} bytes")


def _call_tx(node: Node, args: P.CallArgs, header: BlockHeaderAPI, gas: int
             ) -> SignedTransactionAPI:
    sender = args.from_ or b"\x00" * 20
    state = node.core.reader().get_vm(header).state
    unsigned = node.core.vm_class.create_unsigned_transaction(
        nonce=state.get_nonce(Address(sender)), gas_price=0, gas=gas, to=Address(args.to or b""),
        value=args.value or 0, data=args.data or b"")
    return SpoofTransaction(unsigned, from_=sender)  # type: ignore[return-value]


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


def eth_call(node: Node, args: P.CallArgs, header: BlockHeaderAPI, budget: WorkBudget
             ) -> bytes:
    _check_args(args, "params[0]")
    gas = budget.call_gas(args.gas)
    tx = _call_tx(node, args, header, gas)
    try:
        computation = node.core.call(tx, header, gas, budget.call_deadline())
    except OutOfTime as exc:
        raise _too_slow("eth_call", exc) from None
    except ValidationError as exc:
        raise ServerError(f"call is invalid: {exc}") from None
    except VMError as exc:  # raised before the message runs (e.g. intrinsic gas)
        raise execution_error(exc, b"") from None
    budget.spend_gas(gas - computation.get_gas_remaining())  # intrinsic gas included
    if computation.is_error:
        raise execution_error(computation.error, computation.output)
    return bytes(computation.output)


def eth_estimate_gas(node: Node, args: P.CallArgs, header: BlockHeaderAPI,
                     budget: WorkBudget) -> int:
    _check_args(args, "params[0]")
    cap = min(budget.call_gas(args.gas), node.genesis.params.max_tx_gas)
    tx = _call_tx(node, args, header, cap)
    try:
        estimate = node.core.estimate_gas(tx, header, cap, budget.call_deadline())
    except OutOfTime as exc:
        raise _too_slow("eth_estimateGas", exc) from None
    except ValidationError as exc:
        raise ServerError(f"cannot estimate gas: {exc}") from None
    except VMError as exc:
        raise execution_error(exc, b"") from None
    budget.spend_gas(estimate)  # a lower bound of the work: the search ran it ~log2(cap) times
    return estimate
