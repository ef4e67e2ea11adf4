"""The node's composition root: builds its parts and wires them together, nothing else.

The parts: the store and the chain core, the ledger (:mod:`yilian.node.ledger`: admission,
mempool, build, commit, commit waiters, subscriptions), either the single-validator block
producer (:mod:`yilian.node.producer`) or, with a ``p2p_port``, the consensus driver
(:mod:`yilian.node.consensus_driver`), liveness, the user calls (signed REST writes,
:mod:`yilian.node.user_calls`), the signed-request replay window
(:mod:`yilian.node.request_replay`), and the key service of a center's node. The parts
depend on each other only through :mod:`yilian.node.interfaces`; only this module knows
them all.

Invariants:

* Nothing here admits, builds or commits: the ledger does; this module only wires.
* The mempool journal is replayed through the ledger's one admission path before the
  node serves or produces anything.
* In a consortium every transaction submitted locally goes to the peers (the p2p
  bridge's ``gossip_tx`` is the ledger's admission listener).

``Node`` is what the API serves: it satisfies :class:`yilian.node.node_api.NodeAPI`, whose
attributes (``core``, ``domain``, ``mempool``, ``ledger``, ``user_calls``, ``key_service``,
``request_replay`` ...) point at the parts; the API knows the node only through that protocol.
"""

from __future__ import annotations

import time
from pathlib import Path

from eth_utils import to_canonical_address

from yilian.crypto.suites import get_suite, load_private_key
from yilian.node.chain import ChainCore
from yilian.node.config import ConfigError, NodeConfig
from yilian.node.consensus_driver import ConsensusDriver
from yilian.node.domain import Domain
from yilian.node.genesis import Genesis, load_genesis
from yilian.node.interfaces import ReplayWindow
from yilian.node.keccak_backend import use_fastest_keccak
from yilian.node.key_service import KeyService, load_key_service
from yilian.node.ledger import Ledger
from yilian.node.liveness import Liveness
from yilian.node.natstd_precompiles import self_test as natstd_self_test
from yilian.node.p2p.peers import PeerAddress
from yilian.node.producer import BlockProducer
from yilian.node.request_replay import RequestReplay
from yilian.node.storage import Store
from yilian.node.user_calls import UserCalls


class Node:
    def __init__(self, config: NodeConfig, home: Path) -> None:
        natstd_self_test()  # a node whose precompiles answer wrongly must not start
        use_fastest_keccak()
        self.config = config
        self.home = home
        genesis_path = Path(config.genesis_file)
        self.genesis: Genesis = load_genesis(
            genesis_path if genesis_path.is_absolute() else home / genesis_path)
        data_dir = Path(config.data_dir)
        self.store = Store(data_dir if data_dir.is_absolute() else home / data_dir)
        self.core = ChainCore(self.store, self.genesis)
        self.proposer = bytes(to_canonical_address(config.proposer))
        self.domain = Domain(self.core)
        self.ledger = Ledger(self.store, self.core, self.genesis, self.domain,
                             config.mempool, self.proposer)
        self.mempool = self.ledger.mempool
        self.commit_waiters = self.ledger.commit_waiters
        self.submit = self.ledger.submit
        self.wait_for_commit = self.ledger.wait_for_commit
        self.subscribe = self.ledger.subscribe
        self.started_at = time.time()
        self.consensus: ConsensusDriver | None = None
        self.producer: BlockProducer | None = None
        if config.p2p_port:
            self.consensus = self._make_consensus()
            self.ledger.on_admitted(self.consensus.p2p.gossip_tx)
        else:
            self.producer = BlockProducer(self.ledger, self.genesis.params)
        self.liveness = Liveness(self.ledger, self.consensus)
        self.subscribe(lambda _committed: self.liveness.committed())
        self.ledger.replay_journal()
        self.key_service: KeyService | None = load_key_service(
            config, home, self.ledger, self.liveness, self.domain)
        self.user_calls = UserCalls(self.ledger, self.domain, self.liveness)
        self.request_replay: ReplayWindow = RequestReplay(self.store)

    def _make_consensus(self) -> ConsensusDriver:
        if not self.genesis.validators:
            raise ConfigError("p2p_port is set but the genesis names no validators")
        if not self.config.node_key_file:
            raise ConfigError("consortium mode needs node_key_file (the node's private key)")
        suite = get_suite(self.genesis.suite)
        key_path = Path(self.config.node_key_file)
        private = load_private_key(key_path if key_path.is_absolute() else self.home / key_path,
                                   suite)
        if suite.public_key(private) not in self.genesis.member_keys:
            raise ConfigError("this node's key is not named in the genesis validators or "
                              "observers; use the key generated for it by `yilian network init`")
        peers = [PeerAddress(p.host, p.port, bytes.fromhex(p.node_key[2:]))
                 for p in self.config.peers]
        return ConsensusDriver(self.ledger, suite, private, validator=self.config.validator,
                               peers=peers, listen=(self.config.host, self.config.p2p_port))

    def leveldb_memory(self) -> int | None:
        """Bytes of LevelDB's memtables and block cache (the ``/metrics`` gauge)."""
        return self.store.memory_usage()

    @property
    def last_block_error(self) -> str | None:
        """The single-validator producer's last failure (None in a consortium)."""
        return None if self.producer is None else self.producer.last_block_error

    def start(self) -> None:
        if self.consensus is not None:
            self.consensus.start()
        elif self.producer is not None:
            self.producer.start()

    def stop(self) -> None:
        if self.consensus is not None:
            self.consensus.stop()
        if self.producer is not None:
            self.producer.stop()
        self.store.close()
