"""The load benchmark's baseline: the node's own block building, in this process.

:func:`run_baseline` decodes the same raw transactions the node was sent, recovers their
senders and builds blocks from them with ``ChainCore.build`` over a fresh ``Store`` in a
temporary directory (removed afterwards), from the local genesis with the senders' nonces
where the node had them. No network, no mempool, no consensus: the rate the node's
execution alone allows.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_canonical_address, to_checksum_address

from yilian.bench.measure import CpuMeter, CpuUsage
from yilian.network_configs.local import dev_accounts, local_genesis
from yilian.node.chain import BlockEnv, ChainCore
from yilian.node.genesis import YilianVM, parse_genesis
from yilian.node.storage import Store


@dataclass
class BaselineResult:
    txs: int
    block_txs: int
    blocks: int
    seconds: float
    decode_seconds: float
    tps: float
    failed: int  # transactions whose receipt says they failed, or that could not apply
    cpu: CpuUsage | None = None


def run_baseline(raws: Sequence[bytes], *, chain_id: int, block_txs: int | None,
                 start_nonces: dict[str, int], node_pid: int | None = None
                 ) -> BaselineResult:
    """Decode, recover senders and build blocks from ``raws`` with ``ChainCore.build``.

    The chain starts from the local network's genesis (chain id ``chain_id``), with the
    senders' nonces set to ``start_nonces`` so the same signed transactions apply. Each
    block lands in the temporary store (the node's indexes are skipped); a transaction a
    block leaves for later (its gas cap reached) starts the next block, as in the node.
    """
    doc = local_genesis(dev_accounts(), chain_id=chain_id)
    for address, nonce in start_nonces.items():
        entry = doc["alloc"].setdefault(to_checksum_address(address), {"balance": "0x0"})
        entry["nonce"] = nonce
    genesis = parse_genesis(doc)
    per_block = block_txs or genesis.params.max_tx_per_block
    builder = YilianVM.get_transaction_builder()
    proposer = bytes(to_canonical_address(dev_accounts(1)[0].address))
    with tempfile.TemporaryDirectory(prefix="yilian-baseline-") as tmp:
        store = Store(Path(tmp))
        try:
            core = ChainCore(store, genesis)
            parent: Any = core.head()
            meter = CpuMeter(node_pid)
            start = time.perf_counter()
            txs = [builder.decode(raw) for raw in raws]
            for tx in txs:
                _ = tx.sender  # sender recovery, as the node does on admission
            decoded = time.perf_counter()
            failed = blocks = 0
            pending = list(txs)
            while pending:
                chunk, pending = pending[:per_block], pending[per_block:]
                timestamp = max(int(time.time()), parent.timestamp)
                built = core.build(chunk, BlockEnv(timestamp=timestamp, proposer=proposer))
                store.commit(built.overlay)
                # As the node's mempool does: what waits for a later block (over the block's
                # gas cap) goes first into the next one; the rest of the skipped failed.
                later = [s.tx for s in built.skipped if s.retry]
                failed += len(built.skipped) - len(later) + sum(
                    1 for r in built.receipts if not r.state_root)
                if not built.block.transactions:  # nothing fits any more: give up on them
                    failed += len(later) + len(pending)
                    break
                pending = later + pending
                parent = built.block.header
                blocks += 1
            seconds = time.perf_counter() - start
            cpu = meter.stop()
        finally:
            store.close()
    return BaselineResult(txs=len(txs), block_txs=per_block, blocks=blocks, seconds=seconds,
                          decode_seconds=decoded - start,
                          tps=len(txs) / seconds if seconds else 0.0, failed=failed, cpu=cpu)
