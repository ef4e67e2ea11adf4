"""Ethereum JSON-RPC over the node: the method table and the methods we serve.

Framing and batches are in :mod:`yilian.api.rpc_framing`, parameters are parsed by
:mod:`yilian.api.rpc_params`, logs and filters are :mod:`yilian.api.rpc_logs`, execution
(``eth_call``, ``eth_estimateGas``) is :mod:`yilian.api.rpc_calls`.

Framing follows JSON-RPC 2.0: a parse failure is -32700, a request that is not a
request object is -32600, an unknown method -32601, bad params -32602, node-side
refusals the -32000 range. Notifications (no ``id``) get no response. A handler never
lets an exception escape: anything unexpected becomes -32603 and is logged.

Block tags: blocks are final once committed, so ``latest``, ``safe`` and ``finalized``
all name the head; ``pending`` names the head for state reads and the mempool for
nonces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth_hash.auto import keccak

import yilian.api.rpc_params as P
from yilian.api import rpc_calls, rpc_framing
from yilian.api.json_bytes import hex0x
from yilian.api.reasons import rpc_error
from yilian.api.rpc_errors import (
    InternalError,
    InvalidParams,
    LimitExceeded,
    MethodNotFound,
    ResourceNotFound,
)
from yilian.api.rpc_format import (
    effective_gas_price,
    format_block,
    format_header,
    format_receipt,
    format_transaction,
    hexq,
)
from yilian.api.rpc_framing import WorkBudget
from yilian.api.rpc_logs import LogQueries
from yilian.api.rpc_permissions import guarded
from yilian.node.admission import Rejected
from yilian.node.interfaces import CommittedBlock
from yilian.node.node_api import NodeAPI

log = logging.getLogger("yilian.rpc")

CLIENT_VERSION = "yilian/0.1.0/py-evm-0.12.1b1/python3.11"

JsonObj = dict[str, Any]


class RpcHandler:
    """Dispatches JSON-RPC requests to the node. Thread-safe; handlers run in a threadpool."""

    def __init__(self, node: NodeAPI) -> None:
        self.node = node
        self.limits = node.config.rpc
        self.chain_id = node.genesis.chain_id
        self.logs = LogQueries(node, self.limits, self._header)
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "web3_clientVersion": lambda p: self._arity(p, 0, 0, "web3_clientVersion")
            or CLIENT_VERSION,
            "web3_sha3": self.web3_sha3,
            "net_version": lambda p: self._arity(p, 0, 0, "net_version") or str(self.chain_id),
            "net_listening": lambda p: True,
            "net_peerCount": self.net_peerCount,
            "eth_chainId": lambda p: self._arity(p, 0, 0, "eth_chainId") or hexq(self.chain_id),
            "eth_syncing": lambda p: False,
            "eth_accounts": lambda p: [],
            "eth_coinbase": lambda p: hex0x(self.node.proposer),
            "eth_mining": lambda p: False,
            "eth_hashrate": lambda p: "0x0",
            "eth_gasPrice": lambda p: "0x0",
            "eth_maxPriorityFeePerGas": lambda p: "0x0",
            "eth_blobBaseFee": lambda p: "0x0",
            "eth_feeHistory": self.eth_feeHistory,
            "eth_blockNumber": lambda p: self._arity(p, 0, 0, "eth_blockNumber")
            or hexq(self.node.core.head().block_number),
            "eth_getBalance": self.eth_getBalance,
            "eth_getTransactionCount": self.eth_getTransactionCount,
            "eth_getCode": self.eth_getCode,
            "eth_getStorageAt": self.eth_getStorageAt,
            "eth_getProof": self.eth_getProof,
            "eth_getBlockByNumber": self.eth_getBlockByNumber,
            "eth_getBlockByHash": self.eth_getBlockByHash,
            "eth_getBlockTransactionCountByNumber": self.eth_getBlockTransactionCountByNumber,
            "eth_getBlockTransactionCountByHash": self.eth_getBlockTransactionCountByHash,
            "eth_getTransactionByBlockNumberAndIndex": self.eth_getTransactionByBlockNumberAndIndex,
            "eth_getTransactionByBlockHashAndIndex": self.eth_getTransactionByBlockHashAndIndex,
            "eth_getUncleCountByBlockNumber": lambda p: "0x0",
            "eth_getUncleCountByBlockHash": lambda p: "0x0",
            "eth_getTransactionByHash": self.eth_getTransactionByHash,
            "eth_getTransactionReceipt": self.eth_getTransactionReceipt,
            "eth_getBlockReceipts": self.eth_getBlockReceipts,
            "eth_sendRawTransaction": self.eth_sendRawTransaction,
            **self.logs.methods(),  # yilian.api.rpc_logs
            "yilian_getCommitCertificate": self.yilian_getCommitCertificate,
        }
        # Methods that execute code: they spend the request's WorkBudget.
        self._budgeted: dict[str, Callable[[list[Any], WorkBudget], Any]] = {
            "eth_call": self.eth_call,
            "eth_estimateGas": self.eth_estimateGas,
        }

    # -- framing (yilian.api.rpc_framing) ------------------------------------------------------
    def handle_bytes(self, body: bytes) -> Any:
        """Handle one HTTP body; returns the JSON value to send, or None for no content."""
        payload, refused = rpc_framing.parse_body(body)
        return refused if refused is not None else self.handle_payload(payload)

    def handle_payload(self, payload: Any) -> Any:
        return rpc_framing.handle_payload(payload, self.limits, self.call)

    def method_names(self) -> list[str]:
        return sorted([*self._methods, *self._budgeted])

    def call(self, method: str, params: Any, budget: WorkBudget | None = None) -> Any:
        fn = self._methods.get(method)
        budgeted = self._budgeted.get(method)
        if fn is None and budgeted is None:
            if method in ("eth_subscribe", "eth_unsubscribe"):
                raise MethodNotFound(method, data="subscriptions need a WebSocket: connect "
                                     "to /ws")
            raise MethodNotFound(method)
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidParams(f"invalid params: {method} takes a JSON array of parameters")
        if budgeted is not None:
            run = budgeted
            fn = lambda p: run(p, budget or WorkBudget.start(self.limits))  # noqa: E731
        assert fn is not None
        return guarded(self.node, method, params, fn)  # the caller's token: rpc_permissions

    @staticmethod
    def _arity(params: list[Any], lo: int, hi: int, method: str) -> None:
        P.params_list(params, lo, hi, method)

    def net_peerCount(self, p: list[Any]) -> str:
        """The peers connected now (the same count ``/healthz`` reports); 0 for a single node."""
        P.params_list(p, 0, 0, "net_peerCount")
        consensus = self.node.consensus
        return hexq(0 if consensus is None else consensus.status().peers)

    # -- block resolution ---------------------------------------------------------------------
    def _header(self, tag: Any, where: str) -> BlockHeaderAPI:
        """The header a block tag / number / EIP-1898 object names; ResourceNotFound if none."""
        ref = P.block_tag(tag, where)
        core = self.node.core
        if isinstance(ref, P.BlockRef):
            if ref.hash is not None:
                header = core.header_by_hash(ref.hash)
                if header is None:
                    raise ResourceNotFound(f"block {hex0x(ref.hash)} not found")
                return header
            assert ref.number is not None
            ref = ref.number
        if isinstance(ref, str):
            if ref == "earliest":
                ref = 0
            else:
                return core.head()
        header = core.header_by_number(ref)
        if header is None:
            raise ResourceNotFound(
                f"block {ref} not found; the head is {core.head().block_number}")
        return header

    def _optional_header(self, tag: Any, where: str) -> BlockHeaderAPI | None:
        try:
            return self._header(tag, where)
        except ResourceNotFound:
            return None

    def _timestamp(self, block_hash: bytes) -> int:
        """The timestamp of a committed block (of a transaction record just read)."""
        header = self.node.core.header_by_hash(block_hash)
        if header is None:
            raise InternalError(f"block {hex0x(block_hash)} of a committed transaction is missing")
        return int(header.timestamp)

    def _state(self, header: BlockHeaderAPI) -> Any:
        return self.node.core.reader().get_vm(header).state

    # -- state ---------------------------------------------------------------------------------
    def web3_sha3(self, p: list[Any]) -> str:
        P.params_list(p, 1, 1, "web3_sha3")
        return hex0x(keccak(P.data(p[0], "params[0]")))

    def _account_query(self, p: list[Any], method: str) -> tuple[bytes, Any, Any]:
        """(address, state, tag) for the ``[address, block?]`` methods."""
        P.params_list(p, 1, 2, method)
        address = P.address(p[0], "params[0]")
        tag = p[1] if len(p) > 1 else "latest"
        return address, self._state(self._header(tag, "params[1]")), tag

    def eth_getBalance(self, p: list[Any]) -> str:
        address, state, _ = self._account_query(p, "eth_getBalance")
        return hexq(state.get_balance(address))

    def eth_getTransactionCount(self, p: list[Any]) -> str:
        address, state, tag = self._account_query(p, "eth_getTransactionCount")
        nonce = state.get_nonce(address)
        if tag == "pending":
            nonce = max(nonce, self.node.mempool.pending_nonce(address))
        return hexq(nonce)

    def eth_getCode(self, p: list[Any]) -> str:
        address, state, _ = self._account_query(p, "eth_getCode")
        return hex0x(state.get_code(address))

    def eth_getStorageAt(self, p: list[Any]) -> str:
        P.params_list(p, 2, 3, "eth_getStorageAt")
        address = P.address(p[0], "params[0]")
        slot = P.quantity(p[1], "params[1]")
        header = self._header(p[2] if len(p) > 2 else "latest", "params[2]")
        value = self._state(header).get_storage(address, slot)
        return hex0x(value.to_bytes(32, "big"))

    def eth_getProof(self, p: list[Any]) -> JsonObj:
        """EIP-1186 account and storage proofs against the block's state root."""
        P.params_list(p, 2, 3, "eth_getProof")
        address = P.address(p[0], "params[0]")
        if not isinstance(p[1], list):
            raise InvalidParams("invalid params: params[1] must be a list of storage keys")
        if len(p[1]) > 1000:
            raise LimitExceeded("at most 1000 storage keys per eth_getProof call")
        slots = [P.quantity(k, f"params[1][{i}]") if not (isinstance(k, str) and len(k) == 66)
                 else int.from_bytes(P.hash32(k, f"params[1][{i}]"), "big")
                 for i, k in enumerate(p[1])]
        header = self._header(p[2] if len(p) > 2 else "latest", "params[2]")
        proof = self.node.ledger.proof(address, slots, header)
        return {
            "address": hex0x(proof.address),
            "accountProof": [hex0x(n) for n in proof.proof],
            "balance": hexq(proof.balance),
            "codeHash": hex0x(proof.code_hash),
            "nonce": hexq(proof.nonce),
            "storageHash": hex0x(proof.storage_root),
            "storageProof": [{"key": hexq(s.slot), "value": hexq(s.value),
                              "proof": [hex0x(n) for n in s.proof]} for s in proof.storage],
        }

    # -- blocks --------------------------------------------------------------------------------
    def _block_json(self, header: BlockHeaderAPI | None, full: bool) -> JsonObj | None:
        if header is None:
            return None
        block = self.node.core.block_by_header(header)
        return format_block(block, full_transactions=full, chain_id=self.chain_id)

    def eth_getBlockByNumber(self, p: list[Any]) -> JsonObj | None:
        P.params_list(p, 2, 2, "eth_getBlockByNumber")
        full = P.boolean(p[1], "params[1]")
        return self._block_json(self._optional_header(p[0], "params[0]"), full)

    def eth_getBlockByHash(self, p: list[Any]) -> JsonObj | None:
        P.params_list(p, 2, 2, "eth_getBlockByHash")
        block_hash = P.hash32(p[0], "params[0]")
        full = P.boolean(p[1], "params[1]")
        return self._block_json(self.node.core.header_by_hash(block_hash), full)

    def _block_from(self, p: list[Any], method: str, by_hash: bool, extra: int
                    ) -> BlockAPI | None:
        P.params_list(p, 1, 1 + extra, method)
        if by_hash:
            header = self.node.core.header_by_hash(P.hash32(p[0], "params[0]"))
        else:
            header = self._optional_header(p[0], "params[0]")
        return None if header is None else self.node.core.block_by_header(header)

    def eth_getBlockTransactionCountByNumber(self, p: list[Any]) -> str | None:
        block = self._block_from(p, "eth_getBlockTransactionCountByNumber", False, 0)
        return None if block is None else hexq(len(block.transactions))

    def eth_getBlockTransactionCountByHash(self, p: list[Any]) -> str | None:
        block = self._block_from(p, "eth_getBlockTransactionCountByHash", True, 0)
        return None if block is None else hexq(len(block.transactions))

    def _tx_at(self, block: BlockAPI | None, index: int) -> JsonObj | None:
        if block is None or index >= len(block.transactions):
            return None
        return format_transaction(
            block.transactions[index], chain_id=self.chain_id, block_hash=block.hash,
            block_number=block.number, index=index,
            base_fee=block.header.base_fee_per_gas, block_timestamp=block.header.timestamp)

    def eth_getTransactionByBlockNumberAndIndex(self, p: list[Any]) -> JsonObj | None:
        block = self._block_from(p, "eth_getTransactionByBlockNumberAndIndex", False, 1)
        return self._tx_at(block, P.quantity(p[1], "params[1]") if len(p) > 1 else 0)

    def eth_getTransactionByBlockHashAndIndex(self, p: list[Any]) -> JsonObj | None:
        block = self._block_from(p, "eth_getTransactionByBlockHashAndIndex", True, 1)
        return self._tx_at(block, P.quantity(p[1], "params[1]") if len(p) > 1 else 0)

    def eth_feeHistory(self, p: list[Any]) -> JsonObj:
        P.params_list(p, 2, 3, "eth_feeHistory")
        raw_count = p[0]
        if isinstance(raw_count, int) and not isinstance(raw_count, bool) and raw_count >= 0:
            count = min(raw_count, 1024)  # geth also takes a decimal JSON number here
        else:
            count = min(P.quantity(raw_count, "params[0]"), 1024)
        newest = self._header(p[1], "params[1]")
        oldest = max(0, newest.block_number - count + 1)
        headers = [self.node.core.header_by_number(n)
                   for n in range(oldest, newest.block_number + 1)]
        percentiles = p[2] if len(p) > 2 and isinstance(p[2], list) else None
        out: JsonObj = {
            "oldestBlock": hexq(oldest),
            "baseFeePerGas": ["0x0"] * (len(headers) + 1),
            "gasUsedRatio": [h.gas_used / h.gas_limit if h else 0.0 for h in headers],
        }
        # The spec's ``reward`` is optional and, when present, an array (never null); as
        # geth, it is left out when no percentiles were asked for. Fees are zero here.
        if percentiles:
            out["reward"] = [["0x0"] * len(percentiles) for _ in headers]
        return out

    # -- transactions --------------------------------------------------------------------------
    def eth_sendRawTransaction(self, p: list[Any]) -> str:
        P.params_list(p, 1, 1, "eth_sendRawTransaction")
        raw = P.data(p[0], "params[0]")
        try:
            return hex0x(self.node.submit(raw))
        except Rejected as exc:
            raise rpc_error(exc.reason, exc.message) from exc

    def eth_getTransactionByHash(self, p: list[Any]) -> JsonObj | None:
        P.params_list(p, 1, 1, "eth_getTransactionByHash")
        tx_hash = P.hash32(p[0], "params[0]")
        rec = self.node.core.tx_record(tx_hash)
        if rec is not None:
            return format_transaction(rec.tx, chain_id=self.chain_id, block_hash=rec.block_hash,
                                      block_number=rec.block_number, index=rec.index,
                                      base_fee=0, block_timestamp=self._timestamp(rec.block_hash))
        pending = self.node.mempool.get(tx_hash)
        if pending is None:
            return None
        return format_transaction(pending, chain_id=self.chain_id, block_hash=None,
                                  block_number=None, index=None, base_fee=None)

    def eth_getTransactionReceipt(self, p: list[Any]) -> JsonObj | None:
        P.params_list(p, 1, 1, "eth_getTransactionReceipt")
        rec = self.node.core.tx_record(P.hash32(p[0], "params[0]"))
        if rec is None:
            return None
        return format_receipt(
            rec.receipt, tx=rec.tx, block_hash=rec.block_hash, block_number=rec.block_number,
            index=rec.index, cumulative_gas_before=rec.cumulative_gas_before,
            log_index_start=rec.log_index_start,
            effective_gas_price=effective_gas_price(rec.tx, 0),
            block_timestamp=self._timestamp(rec.block_hash))

    def eth_getBlockReceipts(self, p: list[Any]) -> list[JsonObj] | None:
        P.params_list(p, 1, 1, "eth_getBlockReceipts")
        header = self._optional_header(p[0], "params[0]")
        if header is None:
            return None
        block = self.node.core.block_by_header(header)
        out = []
        gas_before = log_start = 0
        for i, (tx, receipt) in enumerate(zip(block.transactions,
                                              self.node.core.receipts(block), strict=True)):
            out.append(format_receipt(
                receipt, tx=tx, block_hash=block.hash, block_number=block.number, index=i,
                cumulative_gas_before=gas_before, log_index_start=log_start,
                effective_gas_price=effective_gas_price(tx, header.base_fee_per_gas or 0),
                block_timestamp=header.timestamp))
            gas_before = receipt.gas_used
            log_start += len(receipt.logs)
        return out

    # -- execution (yilian.api.rpc_calls) ------------------------------------------------------
    def eth_call(self, p: list[Any], budget: WorkBudget) -> str:
        P.params_list(p, 1, 3, "eth_call")
        args = P.call_object(p[0], "params[0]")
        header = self._header(p[1] if len(p) > 1 else "latest", "params[1]")
        return hex0x(rpc_calls.eth_call(self.node, args, header, budget))

    def eth_estimateGas(self, p: list[Any], budget: WorkBudget) -> str:
        P.params_list(p, 1, 2, "eth_estimateGas")
        args = P.call_object(p[0], "params[0]")
        header = self._header(p[1] if len(p) > 1 else "latest", "params[1]")
        return hexq(rpc_calls.eth_estimate_gas(self.node, args, header, budget))

    # -- consortium ------------------------------------------------------------------------------
    def yilian_getCommitCertificate(self, p: list[Any]) -> JsonObj | None:
        """The commit certificate (> 2/3 of voting power's precommits) of a final block."""
        P.params_list(p, 1, 1, "yilian_getCommitCertificate")
        header = self._optional_header(p[0], "params[0]")
        if header is None or self.node.consensus is None:
            return None
        cert = self.node.consensus.certificate(header.block_number)
        if cert is None:
            return None
        return {
            "height": hexq(cert.height), "round": hexq(cert.round),
            "blockHash": hex0x(cert.value_id),
            "precommits": [{"validator": hex0x(v.validator), "signature": hex0x(v.signature)}
                           for v in cert.votes],
        }

    # -- subscriptions (used by the WebSocket endpoint) ---------------------------------------
    def head_json(self, committed: CommittedBlock) -> JsonObj:
        return format_header(committed.block.header)
