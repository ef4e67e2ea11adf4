"""The small typed interfaces the node's parts depend on (in the style of py-evm's ``eth/abc.py``).

The parts of a node (the ledger, the consensus driver, the block producer, the key service,
the center account, liveness) know each other only through these protocols and value
types, never through each other's classes or the composition root (:mod:`yilian.node.service`).

Invariants:

* This module imports no other module of the node's parts (only the data layers below
  them: chain, storage, mempool, genesis, proofs, execution limits, domain views), so any
  part can import it without a circle.
* :class:`LedgerAPI` is the one way to change the chain: transactions enter through
  ``admit``/``submit`` and blocks through ``commit_block``; everything else reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth.abc import BlockAPI, BlockHeaderAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI

from yilian.contracts.abi import ContractAbi
from yilian.node.admission import Standing
from yilian.node.chain import BuiltBlock, ChainCore
from yilian.node.domain import Located, Member, RecordMeta, VersionMeta
from yilian.node.execution_limits import Deadline
from yilian.node.genesis import Genesis
from yilian.node.mempool import Mempool
from yilian.node.proofs import AccountProof
from yilian.node.storage import Store


@dataclass(frozen=True)
class CommittedBlock:
    """A block as announced to subscribers, after its batch is synced to disk."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]


Listener = Callable[[CommittedBlock], None]
AdmissionListener = Callable[[bytes], None]  # called with each locally admitted raw tx


class LedgerAPI(Protocol):
    """Submit, build, commit, wait for commits and subscribe to them (:mod:`yilian.node.ledger`)."""

    @property
    def core(self) -> ChainCore: ...

    @property
    def store(self) -> Store: ...

    @property
    def mempool(self) -> Mempool: ...

    @property
    def genesis(self) -> Genesis: ...

    def decode(self, raw: bytes) -> SignedTransactionAPI:
        """``raw`` decoded under the admission rules (raises ``Rejected``)."""
        ...

    def admit(self, raw: bytes, *, journal: bool = True,
              decoded: SignedTransactionAPI | None = None) -> bytes:
        """The one admission path; returns the hash, raises ``Rejected``. ``decoded``: ``raw``
        as ``decode`` returned it, so it is not decoded twice."""
        ...

    def submit(self, raw: bytes, *, gossip: bool = True,
               decoded: SignedTransactionAPI | None = None) -> bytes:
        """Admit, then tell the admission listeners (gossip) unless ``gossip`` is False."""
        ...

    def on_admitted(self, listener: AdmissionListener) -> None:
        """Call ``listener`` with every transaction submitted with ``gossip``."""
        ...

    def build(self, txs: list[SignedTransactionAPI], proposer: bytes | None = None,
              budget_s: float | None = None, max_bytes: int | None = None) -> BuiltBlock:
        """A block on the committed head from ``txs``."""
        ...

    def commit_block(self, built: BuiltBlock,
                     extra: dict[bytes, bytes | None] | None = None) -> CommittedBlock:
        """Commit a built or imported block atomically with ``extra``; announce it."""
        ...

    async def wait_for_commit(self, tx_hash: bytes, timeout: float) -> bool:
        """True once ``tx_hash`` is committed, False after ``timeout`` seconds."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every committed block; returns the unsubscribe call."""
        ...

    def proof(self, address: bytes, slots: Sequence[int], at: BlockHeaderAPI) -> AccountProof:
        """The EIP-1186 proof of ``address`` and its storage ``slots`` after block ``at``."""
        ...

    def call_as(self, sender: bytes, to: bytes, data: bytes, at: BlockHeaderAPI, gas: int, *,
                value: int = 0, deadline: Deadline | None = None) -> ComputationAPI:
        """Run a call from ``sender`` on the state after block ``at``; nothing is written."""
        ...

    def estimate_gas_as(self, sender: bytes, to: bytes, data: bytes, at: BlockHeaderAPI,
                        gas_cap: int, *, value: int = 0,
                        deadline: Deadline | None = None) -> int:
        """The least gas (at most ``gas_cap``) the call of ``call_as`` needs."""
        ...


class DomainReader(Protocol):
    """Reads of the domain contracts and their history (:class:`yilian.node.domain.Domain`)."""

    @property
    def enabled(self) -> bool:
        """Whether the genesis holds the Members, Records and Grants contracts."""
        ...

    @property
    def grants(self) -> ContractAbi: ...

    @property
    def records(self) -> ContractAbi: ...

    def abi_at(self, address: bytes) -> ContractAbi: ...

    def role_of(self, account: bytes) -> int: ...

    def member_of(self, account: bytes) -> bytes: ...

    def member(self, member_id: bytes) -> Member | None: ...

    def record(self, record_id: bytes) -> RecordMeta | None: ...

    def version(self, record_id: bytes, version: int) -> VersionMeta: ...

    def grant(self, grant_id: int) -> dict[str, Any] | None: ...

    def check_grant(self, grant_id: int, record_id: bytes, reader: bytes, *,
                    retry: bool = False) -> int:
        """``Grants.check`` (``check_retry`` with ``retry``): the version the grant allows
        ``reader`` to read, or ``DomainCallError`` with the contract's reason."""
        ...

    def published(self, record_id: bytes, version: int) -> Located | None: ...

    def receipt_of_request(self, request_id: bytes) -> Located | None: ...

    def history(self, subject: bytes, *, limit: int = 10_000) -> Iterator[Located]: ...


class DomainRules(Protocol):
    """The domain's part in admission and commit (:class:`yilian.node.domain.Domain`), for
    the ledger."""

    def standing(self, account: bytes) -> Standing | None: ...

    def may_act_suspended(self, tx: SignedTransactionAPI) -> bool: ...

    def check_admission(self, tx: SignedTransactionAPI, digest: Any) -> None: ...

    def index_writes(self, block: BlockAPI, receipts: Sequence[ReceiptAPI]
                     ) -> dict[bytes, bytes | None]: ...


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class ChainHealth:
    quorum: bool
    voting_power: int  # of the validators this node is connected to, itself included
    total_power: int
    peers: int
    head: int
    last_commit_age_s: float | None  # since this process last committed a block
    problems: tuple[Problem, ...] = field(default=())

    @property
    def stalled(self) -> bool:
        return bool(self.problems)

    def json(self) -> dict[str, Any]:
        return {
            "stalled": self.stalled,
            "reasons": [{"reason": p.reason, "message": p.message} for p in self.problems],
            "quorum": self.quorum, "votingPower": self.voting_power,
            "totalVotingPower": self.total_power, "peers": self.peers, "head": self.head,
            "lastCommitAgeSeconds": (None if self.last_commit_age_s is None
                                     else round(self.last_commit_age_s, 1)),
        }


class HealthCheck(Protocol):
    """Is the chain making progress (:class:`yilian.node.liveness.Liveness`)."""

    def check(self) -> ChainHealth: ...


class ReplayWindow(Protocol):
    """Was a signed request served before (:mod:`yilian.node.request_replay`)."""

    def first_use(self, account: bytes, nonce: bytes, expires: int) -> bool:
        """True (and remembered until ``expires``) the first time; False for a replay."""
        ...


@dataclass(frozen=True)
class ConsensusStatus:
    """Where the consensus driver is: its height, round and step, connected peers, and
    whether this node votes."""

    height: int
    round: int
    step: str
    peers: int
    validator: bool


class PeerSet(Protocol):
    def connected_peers(self) -> Iterable[bytes]: ...


class ConsensusView(Protocol):
    """What liveness reads of the consensus driver: its peers and its own validator key."""

    @property
    def pm(self) -> PeerSet | None: ...

    @property
    def public_key(self) -> bytes: ...

    @property
    def address(self) -> bytes | None: ...
