"""What the API may use of a running node: one typed seam (in the style of py-evm's abc.py).

``api/`` (REST, JSON-RPC, WebSocket) depends on :class:`NodeAPI` and the read interfaces
below, never on :class:`yilian.node.service.Node` or the classes behind it; the composition
root's ``Node`` satisfies the protocol structurally (mypy checks it where ``runner`` hands
the node to ``create_app``), and a test can serve the API from any object that does.

The seam is narrow on purpose:

* reads of the committed chain go through :class:`ChainReader` and of the domain contracts
  (members, records, grants, their history) through :class:`DomainReader`;
* writes go through the ledger's one admission path only: raw transactions by ``submit``,
  signed user calls by ``user_calls`` (submit-and-wait), a center's records and keys by
  ``key_service``; calls as an account and proofs are ledger reads (``ledger``);
* health, consensus status and the memory gauge are read-only views.

Invariants: this module defines protocols only (no behaviour); it imports the value types
of the node's parts and nothing of ``service``, ``runner`` or ``api``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.chains.base import Chain

from yilian.consensus.types import CommitCertificate
from yilian.node.center_account import CenterAccount
from yilian.node.config import NodeConfig
from yilian.node.genesis import Genesis
from yilian.node.interfaces import (
    ConsensusStatus,
    DomainReader,
    HealthCheck,
    LedgerAPI,
    Listener,
    ReplayWindow,
)
from yilian.node.key_types import KeyItem, KeyRelease, Published
from yilian.node.tx_index import TxRecord
from yilian.node.tx_outcome import Pending
from yilian.node.user_calls import Admitted


class ChainReader(Protocol):
    """Reads of the committed chain (:class:`yilian.node.chain.ChainCore`)."""

    def reader(self) -> Chain:
        """A py-evm chain over committed data only; one per request."""
        ...

    def head(self) -> BlockHeaderAPI: ...

    def header_by_number(self, number: int) -> BlockHeaderAPI | None: ...

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None: ...

    def block_by_header(self, header: BlockHeaderAPI) -> BlockAPI: ...

    def receipts(self, block: BlockAPI) -> tuple[ReceiptAPI, ...]: ...

    def tx_record(self, tx_hash: bytes) -> TxRecord | None: ...

    def blocks_with_logs_from(self, address: bytes, first: int, last: int) -> Iterator[int]:
        """The block numbers in ``first..last`` holding a log of ``address``."""
        ...


class MempoolView(Protocol):
    """Reads of the pending transactions (:class:`yilian.node.mempool.Mempool`)."""

    def __len__(self) -> int: ...

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None: ...

    def pending_nonce(self, sender: bytes) -> int: ...


class ConsensusAPI(Protocol):
    """What the API shows of the consensus driver: status, last error, certificates."""

    @property
    def last_error(self) -> str | None: ...

    def status(self) -> ConsensusStatus: ...

    def certificate(self, height: int) -> CommitCertificate | None: ...


class KeyServiceAPI(Protocol):
    """A center's records and keys (:class:`yilian.node.key_service.KeyService`)."""

    @property
    def account(self) -> CenterAccount: ...

    def center_id(self) -> bytes: ...

    async def publish(self, caller: bytes, rtype: Any, subject: str, payload: Any, *,
                      client_id: str, owner: str | None, version: int | None) -> Published: ...

    async def remove(self, caller: bytes, record_id: bytes, version: int | None
                     ) -> Published: ...

    async def release_key(self, reader: bytes, nonce: str, record_id: bytes, grant_id: int,
                          version: int | None, client_request_id: bytes | None = None,
                          expect_enc_key: bytes | None = None) -> KeyRelease: ...

    async def release_keys(self, reader: bytes, nonce: str, items: list[KeyItem],
                           client_request_id: bytes | None = None,
                           expect_enc_key: bytes | None = None) -> list[KeyRelease]: ...


class UserCallsAPI(Protocol):
    """Signed user transactions, submitted and waited for (:mod:`yilian.node.user_calls`)."""

    def submit(self, raw: bytes, contract: bytes, functions: frozenset[str] | None = None,
               expect: Mapping[str, Any] | None = None) -> TxRecord | Pending | Admitted: ...

    async def wait(self, admitted: Admitted, timeout: float) -> TxRecord | Pending: ...


class NodeAPI(Protocol):
    """A running node as the API sees it (:class:`yilian.node.service.Node`)."""

    @property
    def config(self) -> NodeConfig: ...

    @property
    def home(self) -> Path: ...

    @property
    def genesis(self) -> Genesis: ...

    @property
    def proposer(self) -> bytes:
        """The coinbase of this node's blocks."""
        ...

    @property
    def started_at(self) -> float: ...

    @property
    def core(self) -> ChainReader: ...

    @property
    def domain(self) -> DomainReader: ...

    @property
    def mempool(self) -> MempoolView: ...

    @property
    def ledger(self) -> LedgerAPI: ...

    @property
    def consensus(self) -> ConsensusAPI | None:
        """None on a single-validator node."""
        ...

    @property
    def key_service(self) -> KeyServiceAPI | None:
        """None unless this node holds its center's account."""
        ...

    @property
    def liveness(self) -> HealthCheck: ...

    @property
    def last_block_error(self) -> str | None: ...

    @property
    def user_calls(self) -> UserCallsAPI: ...

    @property
    def request_replay(self) -> ReplayWindow: ...

    def submit(self, raw: bytes, *, gossip: bool = True,
               decoded: SignedTransactionAPI | None = None) -> bytes:
        """The ledger's one admission path; returns the hash, raises ``Rejected``."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every committed block; returns the unsubscribe call."""
        ...

    def leveldb_memory(self) -> int | None:
        """Bytes of LevelDB's memtables and block cache, None where unknown."""
        ...
