"""Logs over JSON-RPC: ``eth_getLogs``, the polling filters and log subscriptions' matching.

A query names a block range (or one block hash), addresses and topics
(:mod:`yilian.api.rpc_log_params`). Blocks are found through the node's log-address index
when addresses are given, then skipped by their bloom filter, so a narrow query reads few
blocks. A polling filter (``eth_newFilter``, ``eth_newBlockFilter``) remembers the next
block to report; ``eth_getFilterChanges`` reports the committed blocks since.

Invariants:

* A query reads at most ``rpc.max_log_blocks`` blocks and answers at most
  ``rpc.max_logs`` logs; past either it fails with -32005 saying how to narrow it.
* Log indexes count every log of the block, matched or not (as geth does).
* At most ``MAX_FILTERS`` filters live at once; one not polled for ``FILTER_TTL`` seconds
  is forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockHeaderAPI
from eth_bloom import BloomFilter
from eth_hash.auto import keccak

import yilian.api.rpc_params as P
from yilian.api.json_bytes import hex0x
from yilian.api.rpc_errors import InvalidParams, LimitExceeded, ResourceNotFound
from yilian.api.rpc_format import format_log, hexq, log_matches
from yilian.api.rpc_log_params import LogFilter, log_filter
from yilian.node.config import RpcLimits
from yilian.node.interfaces import CommittedBlock
from yilian.node.node_api import NodeAPI

FILTER_TTL = 300.0
MAX_FILTERS = 1000

JsonObj = dict[str, Any]
HeaderOf = Callable[[Any, str], BlockHeaderAPI]  # a block parameter -> its header


@dataclass
class _Filter:
    kind: str  # "logs" | "blocks"
    spec: LogFilter | None
    next_block: int
    touched: float = field(default_factory=time.monotonic)


class LogQueries:
    """The log methods of one :class:`~yilian.api.rpc.RpcHandler` and its filters.

    Thread-safe (handlers run in a threadpool): the filters are kept under one lock."""

    def __init__(self, node: NodeAPI, limits: RpcLimits, header: HeaderOf) -> None:
        self.node = node
        self.limits = limits
        self._header = header
        self._filters: dict[str, _Filter] = {}
        self._filters_lock = threading.Lock()

    def methods(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {
            "eth_getLogs": self.eth_getLogs,
            "eth_newFilter": self.eth_newFilter,
            "eth_newBlockFilter": self.eth_newBlockFilter,
            "eth_getFilterChanges": self.eth_getFilterChanges,
            "eth_getFilterLogs": self.eth_getFilterLogs,
            "eth_uninstallFilter": self.eth_uninstallFilter,
        }

    def _range(self, spec: LogFilter) -> tuple[int, int] | None:
        core = self.node.core
        if spec.block_hash is not None:
            header = core.header_by_hash(spec.block_hash)
            if header is None:
                raise ResourceNotFound(f"block {hex0x(spec.block_hash)} not found")
            return header.block_number, header.block_number
        head = core.head().block_number

        def resolve(tag: Any, default: int) -> int:
            if tag is None:
                return default
            if isinstance(tag, int):
                return tag
            if isinstance(tag, P.BlockRef):
                return self._header(tag.number if tag.number is not None else
                                    {"blockHash": hex0x(tag.hash or b"")}, "filter").block_number
            return 0 if tag == "earliest" else head

        first = resolve(spec.from_block, head)
        last = min(resolve(spec.to_block, head), head)
        if first > last:
            return None
        if last - first + 1 > self.limits.max_log_blocks:
            raise LimitExceeded(
                f"block range {first}..{last} spans {last - first + 1} blocks; query at most "
                f"{self.limits.max_log_blocks} blocks per call")
        return first, last

    def _logs(self, spec: LogFilter, first: int, last: int) -> list[JsonObj]:
        core = self.node.core
        addresses = set(spec.addresses) if spec.addresses else set()
        if addresses:
            numbers: set[int] = set()
            for a in addresses:
                numbers.update(core.blocks_with_logs_from(a, first, last))
            candidates = sorted(numbers)
        else:
            candidates = list(range(first, last + 1))
        out: list[JsonObj] = []
        for number in candidates:
            header = core.header_by_number(number)
            if header is None or not _bloom_may_match(header.bloom, addresses, spec.topics):
                continue
            block = core.block_by_header(header)
            log_index = 0
            for i, (tx, receipt) in enumerate(zip(block.transactions, core.receipts(block),
                                                  strict=True)):
                for entry in receipt.logs:
                    if log_matches(entry, addresses, spec.topics):
                        out.append(format_log(entry, block_hash=block.hash, block_number=number,
                                              tx_hash=tx.hash, tx_index=i, log_index=log_index,
                                              block_timestamp=header.timestamp))
                        if len(out) > self.limits.max_logs:
                            raise LimitExceeded(
                                f"query returns more than {self.limits.max_logs} logs; narrow "
                                "the block range or add address/topic filters")
                    log_index += 1
        return out

    def eth_getLogs(self, p: list[Any]) -> list[JsonObj]:
        P.params_list(p, 1, 1, "eth_getLogs")
        spec = log_filter(p[0], "params[0]")
        rng = self._range(spec)
        return [] if rng is None else self._logs(spec, *rng)

    # -- filters (polling) ---------------------------------------------------------------------
    def _new_filter(self, f: _Filter) -> str:
        with self._filters_lock:
            now = time.monotonic()
            for fid in [k for k, v in self._filters.items() if now - v.touched > FILTER_TTL]:
                del self._filters[fid]
            if len(self._filters) >= MAX_FILTERS:
                raise LimitExceeded(f"too many filters ({MAX_FILTERS}); uninstall unused ones")
            fid = hexq(int.from_bytes(keccak(str((now, id(f))).encode())[:16], "big"))
            self._filters[fid] = f
            return fid

    def _get_filter(self, p: list[Any], method: str) -> tuple[str, _Filter]:
        P.params_list(p, 1, 1, method)
        fid = p[0]
        with self._filters_lock:
            f = self._filters.get(fid) if isinstance(fid, str) else None
            if f is None or time.monotonic() - f.touched > FILTER_TTL:
                raise ResourceNotFound("filter not found (filters expire after 5 minutes "
                                       "without polling); create a new one")
            f.touched = time.monotonic()
            return fid, f

    def eth_newFilter(self, p: list[Any]) -> str:
        P.params_list(p, 1, 1, "eth_newFilter")
        spec = log_filter(p[0], "params[0]")
        head = self.node.core.head().block_number
        start = spec.from_block if isinstance(spec.from_block, int) else head + 1
        return self._new_filter(_Filter("logs", spec, start))

    def eth_newBlockFilter(self, p: list[Any]) -> str:
        return self._new_filter(_Filter("blocks", None, self.node.core.head().block_number + 1))

    def eth_getFilterChanges(self, p: list[Any]) -> list[Any]:
        _, f = self._get_filter(p, "eth_getFilterChanges")
        head = int(self.node.core.head().block_number)
        first, f.next_block = f.next_block, head + 1
        if first > head:
            return []
        if f.kind == "blocks":
            return [hex0x(self.node.core.header_by_number(n).hash)  # type: ignore[union-attr]
                    for n in range(first, head + 1)]
        assert f.spec is not None
        last = head
        if isinstance(f.spec.to_block, int):
            last = min(last, f.spec.to_block)
        if first > last:
            return []
        first = max(first, last - self.limits.max_log_blocks + 1)
        return self._logs(f.spec, first, last)

    def eth_getFilterLogs(self, p: list[Any]) -> list[JsonObj]:
        _, f = self._get_filter(p, "eth_getFilterLogs")
        if f.kind != "logs" or f.spec is None:
            raise InvalidParams("invalid params: eth_getFilterLogs needs a log filter id")
        rng = self._range(f.spec)
        return [] if rng is None else self._logs(f.spec, *rng)

    def eth_uninstallFilter(self, p: list[Any]) -> bool:
        P.params_list(p, 1, 1, "eth_uninstallFilter")
        with self._filters_lock:
            return self._filters.pop(p[0], None) is not None if isinstance(p[0], str) else False


def logs_json(committed: CommittedBlock, spec: LogFilter) -> list[JsonObj]:
    """The logs of a just-committed block that ``spec`` matches (``eth_subscribe("logs")``)."""
    block = committed.block
    addresses = set(spec.addresses) if spec.addresses else set()
    out = []
    log_index = 0
    for i, (tx, receipt) in enumerate(zip(block.transactions, committed.receipts,
                                          strict=True)):
        for entry in receipt.logs:
            if log_matches(entry, addresses, spec.topics):
                out.append(format_log(entry, block_hash=block.hash, block_number=block.number,
                                      tx_hash=tx.hash, tx_index=i, log_index=log_index,
                                      block_timestamp=block.header.timestamp))
            log_index += 1
    return out


def _bloom_may_match(bloom: int, addresses: set[bytes], topics: Any) -> bool:
    f = BloomFilter(bloom)
    if addresses and not any(a in f for a in addresses):
        return False
    for position in topics or ():
        if position is None:
            continue
        options = position if isinstance(position, (list, tuple)) else [position]
        if options and not any(t in f for t in options):
            return False
    return True
