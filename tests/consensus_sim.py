"""Deterministic simulation of a yilian consensus network (tests only).

Every node runs the pure ``yilian.consensus`` state machine behind a small host that does
what the real node will: verifies real signatures, signs its own messages, broadcasts,
schedules timeouts, re-gossips its current-height messages and helps lagging peers with
the decided proposal and certificate. The network runs on virtual time from one seeded
``random.Random``: random delays, reordering, duplication, drops before the global
stabilisation time (GST) and a partition that heals at GST.

Byzantine validators (at most f) are one of:

* ``equivocate``: runs the state machine but sends one signed vote/proposal to one half
  of the network and a conflicting one (often an invalid value) to the other half;
* ``silent``: never sends anything;
* ``garbage``: sends random messages: bad signatures, non-validator senders, and validly
  signed nonsense (random heights/rounds/values, conflicting votes, proposals).

``run(scenario)`` returns a :class:`SimResult` with everything the properties need.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import nacl.exceptions
import nacl.signing

from yilian.consensus import (
    CommitCertificate,
    CommitReceived,
    ConsensusConfig,
    ConsensusState,
    Decide,
    DuplicateVoteEvidence,
    Effect,
    Evidence,
    Input,
    NewHeight,
    Proposal,
    ProposalReceived,
    RequestValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutConfig,
    TimeoutFired,
    Validator,
    ValidatorSet,
    ValueToPropose,
    Vote,
    VoteReceived,
    VoteType,
    check_certificate,
    initial_state,
    proposal_sign_bytes,
    step,
    vote_sign_bytes,
)
from yilian.consensus.errors import InvalidCertificate
from yilian.node.crypto.suites import SM, STANDARD, Suite

CHAIN_ID = "yilian-sim"

# --- signature suites ----------------------------------------------------------------------


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class SignatureSuite:
    """``keygen(seed32) -> (signer, public_key)``; ``verify(pub, msg, sig) -> bool``."""

    name: str
    keygen: Callable[[bytes], tuple[Signer, bytes]]
    verify: Callable[[bytes, bytes, bytes], bool]


class _Ed25519Signer:
    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)


def _ed25519_keygen(seed: bytes) -> tuple[Signer, bytes]:
    s = _Ed25519Signer(seed)
    return s, s.public_key


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError, TypeError):
        return False
    return True


ED25519 = SignatureSuite("ed25519", _ed25519_keygen, _ed25519_verify)

class _NodeSuiteSigner:
    def __init__(self, suite: Suite, private: bytes) -> None:
        self._suite = suite
        self._private = private
        self.public_key = suite.public_key(private)

    def sign(self, message: bytes) -> bytes:
        return self._suite.sign(self._private, message)


def _node_suite(suite: Suite) -> SignatureSuite:
    """The node's own crypto suite (yilian.node.crypto.suites) as a simulation suite."""

    def keygen(seed: bytes) -> tuple[Signer, bytes]:
        # A valid private key derived from the seed, so runs stay reproducible.
        private = seed
        counter = 0
        while True:
            try:
                signer = _NodeSuiteSigner(suite, private)
                break
            except ValueError:
                counter += 1
                private = hashlib.sha256(seed + bytes([counter])).digest()
        return signer, signer.public_key

    return SignatureSuite(suite.name, keygen, suite.verify)


#: The suites every simulation test runs with: the node's `standard` (Ed25519) and `sm`
#: (SM2 with SM3, through OpenSSL) suites.
SUITES: list[SignatureSuite] = [_node_suite(STANDARD), _node_suite(SM)]

# --- scenario ------------------------------------------------------------------------------

BYZANTINE_KINDS = ("equivocate", "silent", "garbage")

SIM_TIMEOUTS = TimeoutConfig(propose_ms=400, propose_delta_ms=200, prevote_ms=200,
                             prevote_delta_ms=100, precommit_ms=200, precommit_delta_ms=100,
                             max_ms=4000)


@dataclass(frozen=True)
class Scenario:
    n: int
    seed: int
    suite: SignatureSuite = ED25519
    byzantine: tuple[tuple[int, str], ...] = ()  # (node index, kind)
    target_height: int = 3
    gst_ms: int = 3000  # drops and the partition end here
    drop_prob: float = 0.2  # before GST
    dup_prob: float = 0.05
    pre_gst_max_delay_ms: int = 1500
    post_gst_max_delay_ms: int = 100
    partition: tuple[tuple[int, ...], ...] = ()  # blocks; empty = none
    gossip_interval_ms: int = 500
    max_time_ms: int = 120_000

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    def describe(self) -> str:
        return (f"Scenario(n={self.n}, seed={self.seed}, suite={self.suite.name}, "
                f"byzantine={self.byzantine}, gst={self.gst_ms}, partition={self.partition})")


def random_scenario(n: int, seed: int, suite: SignatureSuite = ED25519,
                    target_height: int = 3) -> Scenario:
    """Derive a scenario from ``seed``: f Byzantine validators of random kinds, random GST,
    drop rate and (sometimes) a partition that heals at GST."""
    rng = random.Random(f"scenario/{n}/{seed}")
    f = (n - 1) // 3
    byz_idx = sorted(rng.sample(range(n), rng.randint(0, f)))
    byzantine = tuple((i, rng.choice(BYZANTINE_KINDS)) for i in byz_idx)
    partition: tuple[tuple[int, ...], ...] = ()
    if rng.random() < 0.5:
        order = list(range(n))
        rng.shuffle(order)
        cut = rng.randint(1, n - 1)
        partition = (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))
    return Scenario(n=n, seed=seed, suite=suite, byzantine=byzantine,
                    target_height=target_height, gst_ms=rng.randint(0, 5000),
                    drop_prob=rng.choice((0.0, 0.1, 0.3)), partition=partition)


# --- simulation ----------------------------------------------------------------------------

Msg = Proposal | Vote | CommitCertificate


@dataclass
class SimNode:
    index: int
    address: bytes
    signer: Signer
    kind: str  # "honest" or a Byzantine kind
    state: ConsensusState
    own: list[Proposal | Vote] = field(default_factory=list)  # own current-height msgs
    seen: set[tuple[bytes, bytes]] = field(default_factory=set)
    decided: dict[int, Decide] = field(default_factory=dict)
    decide_msgs: dict[int, list[Msg]] = field(default_factory=dict)  # for catch-up
    helped: set[tuple[int, int, int]] = field(default_factory=set)
    height_start: dict[int, int] = field(default_factory=dict)


@dataclass
class SimResult:
    scenario: Scenario
    honest: list[int]
    byzantine: dict[int, str]
    vset: ValidatorSet
    decisions: dict[int, dict[int, Decide]]  # node -> height -> Decide
    height_start: dict[int, dict[int, int]]  # node -> height -> virtual time entered
    invalid_values: set[bytes]
    evidence: list[tuple[int, DuplicateVoteEvidence]]
    bad_certificates: list[str]
    end_time: int
    stabilised_at: int
    dropped_bad_sig: int


class Simulation:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.now = 0
        self.queue: list[tuple[int, int, str, Any]] = []
        self.seq = itertools.count()
        self.invalid: set[bytes] = set()
        self.evidence: list[tuple[int, DuplicateVoteEvidence]] = []
        self.bad_certs: list[str] = []
        self.dropped_bad_sig = 0
        byz = dict(sc.byzantine)
        keys = [sc.suite.keygen(self.rng.randbytes(32)) for _ in range(sc.n)]
        addresses = [bytes([i]) * 20 for i in range(sc.n)]
        self.vset = ValidatorSet(tuple(
            Validator(addresses[i], keys[i][1], 1) for i in range(sc.n)))
        self.pubkeys = {addresses[i]: keys[i][1] for i in range(sc.n)}
        self.nodes = [
            SimNode(i, addresses[i], keys[i][0], byz.get(i, "honest"),
                    initial_state(ConsensusConfig(address=addresses[i], timeouts=SIM_TIMEOUTS)))
            for i in range(sc.n)]
        self.block_of = {}  # node index -> partition block
        for b, block in enumerate(sc.partition):
            for i in block:
                self.block_of[i] = b
        self.stabilised_at = sc.gst_ms

    # -- event queue
    def push(self, at: int, kind: str, payload: Any) -> None:
        heapq.heappush(self.queue, (at, next(self.seq), kind, payload))

    # -- network
    def send(self, src: int, dst: int, msg: Msg) -> None:
        sc = self.sc
        before_gst = self.now < sc.gst_ms
        if before_gst and self.block_of and self.block_of.get(src) != self.block_of.get(dst):
            return  # partitioned
        if before_gst and self.rng.random() < sc.drop_prob:
            return
        copies = 2 if self.rng.random() < sc.dup_prob else 1
        for _ in range(copies):
            max_delay = sc.pre_gst_max_delay_ms if before_gst else sc.post_gst_max_delay_ms
            self.push(self.now + self.rng.randint(1, max_delay), "deliver", (src, dst, msg))

    def broadcast(self, src: int, msg: Msg, only: list[int] | None = None) -> None:
        for j in (only if only is not None else range(self.sc.n)):
            if j != src:
                self.send(src, j, msg)

    # -- signing
    def sign_vote(self, node: SimNode, v: Vote) -> Vote:
        return Vote(v.type, v.height, v.round, v.value_id, v.validator,
                    node.signer.sign(vote_sign_bytes(CHAIN_ID, v)))

    def sign_proposal(self, node: SimNode, p: Proposal) -> Proposal:
        return Proposal(p.height, p.round, p.value_id, p.valid_round, p.proposer,
                        node.signer.sign(proposal_sign_bytes(CHAIN_ID, p)))

    def verified(self, msg: Proposal | Vote) -> bool:
        if isinstance(msg, Vote):
            pub = self.pubkeys.get(msg.validator)
            data = vote_sign_bytes(CHAIN_ID, msg)
        else:
            pub = self.pubkeys.get(msg.proposer)
            data = proposal_sign_bytes(CHAIN_ID, msg)
        return pub is not None and self.sc.suite.verify(pub, data, msg.signature)

    # -- host of one node
    def feed(self, node: SimNode, first: Input) -> None:
        work: deque[Input] = deque([first])
        while work:
            inp = work.popleft()
            if isinstance(inp, NewHeight):
                node.own = []
                node.height_start[inp.height] = self.now
            node.state, effects = step(node.state, inp)
            for e in effects:
                self.handle(node, e, work)

    def halves(self, node: SimNode) -> tuple[list[int], list[int]]:
        others = [j for j in range(self.sc.n) if j != node.index]
        self.rng.shuffle(others)
        k = len(others) // 2
        return others[:k], others[k:]

    def handle(self, node: SimNode, e: Effect, work: deque[Input]) -> None:
        sc = self.sc
        if isinstance(e, RequestValue):
            value = self.rng.randbytes(32)
            if node.kind == "equivocate" and self.rng.random() < 0.5:
                self.invalid.add(value)
            work.append(ValueToPropose(e.height, e.round, value))
        elif isinstance(e, SignProposal):
            p = self.sign_proposal(node, Proposal(e.height, e.round, e.value_id,
                                                  e.valid_round, node.address))
            node.own.append(p)
            if node.kind == "equivocate":
                bad = self.rng.randbytes(32)
                self.invalid.add(bad)
                p2 = self.sign_proposal(node, Proposal(e.height, e.round, bad, -1,
                                                       node.address))
                a, b = self.halves(node)
                self.broadcast(node.index, p, a)
                self.broadcast(node.index, p2, b)
            else:
                self.broadcast(node.index, p)
            work.append(ProposalReceived(p, e.value_id not in self.invalid))
        elif isinstance(e, SignVote):
            v = self.sign_vote(node, Vote(e.type, e.height, e.round, e.value_id, node.address))
            node.own.append(v)
            if node.kind == "equivocate":
                other = None if e.value_id is not None else self.rng.randbytes(32)
                v2 = self.sign_vote(node, Vote(e.type, e.height, e.round, other, node.address))
                a, b = self.halves(node)
                self.broadcast(node.index, v, a)
                self.broadcast(node.index, v2, b)
            else:
                self.broadcast(node.index, v)
            work.append(VoteReceived(v))
        elif isinstance(e, ScheduleTimeout):
            self.push(self.now + e.duration_ms, "timeout",
                      (node.index, TimeoutFired(e.kind, e.height, e.round)))
        elif isinstance(e, Decide):
            node.decided[e.height] = e
            try:
                check_certificate(e.certificate, self.vset, CHAIN_ID, sc.suite.verify)
            except InvalidCertificate as exc:
                self.bad_certs.append(f"node {node.index} height {e.height}: {exc}")
            props = [q for q, _ in node.state.proposals.get(e.certificate.round, ())
                     if q.value_id == e.value_id]
            node.decide_msgs[e.height] = [e.certificate, *props[:1]]
            if e.height < sc.target_height:
                work.append(NewHeight(e.height + 1, self.vset))
        elif isinstance(e, Evidence):
            self.evidence.append((node.index, e.evidence))

    def deliver(self, src: int, dst: int, msg: Msg) -> None:
        node = self.nodes[dst]
        if node.kind in ("silent", "garbage"):
            return
        h = msg.height
        if isinstance(msg, CommitCertificate):
            if h == node.state.height and h not in node.decided:
                try:  # block sync: the host checks signatures, then the core decides
                    check_certificate(msg, self.vset, CHAIN_ID, self.sc.suite.verify)
                except InvalidCertificate:
                    self.dropped_bad_sig += 1
                    return
                self.feed(node, CommitReceived(msg))
            return
        if h in node.decided:
            # the sender has not decided h (yet): help it, even if the message was seen
            self.help(node, src, h)
        if h < node.state.height:
            return
        key = (vote_sign_bytes(CHAIN_ID, msg) if isinstance(msg, Vote)
               else proposal_sign_bytes(CHAIN_ID, msg), msg.signature)
        if key in node.seen:
            return
        if not self.verified(msg):
            self.dropped_bad_sig += 1
            return
        if h == node.state.height:
            node.seen.add(key)  # future-height messages may need re-delivery later
        if isinstance(msg, Vote):
            self.feed(node, VoteReceived(msg))
        else:
            self.feed(node, ProposalReceived(msg, msg.value_id not in self.invalid))

    def help(self, node: SimNode, peer: int, h: int) -> None:
        """A lagging peer sent a message of height ``h``: send it the decided proposal and
        commit certificate of ``h`` (at most once per gossip interval)."""
        slot = (peer, h, self.now // self.sc.gossip_interval_ms)
        if h in node.decide_msgs and slot not in node.helped:
            node.helped.add(slot)
            for m in node.decide_msgs[h]:
                self.send(node.index, peer, m)

    def gossip(self, i: int) -> None:
        node = self.nodes[i]
        if node.kind == "garbage":
            self.send_garbage(node)
        elif node.kind != "silent":
            for m in self.gossip_set(node):
                self.broadcast(i, m)
        self.push(self.now + self.sc.gossip_interval_ms, "gossip", i)

    @staticmethod
    def gossip_set(node: SimNode) -> list[Msg]:
        """What a node re-sends each interval: its own current-height messages, and (as the
        paper's gossip assumes: messages received by a correct process reach all correct
        processes) the proposals and all votes it holds for its current round and its
        valid round, including equivocating ones, which can justify its lock."""
        st = node.state
        rounds = {st.round, st.valid_round} - {-1}
        msgs: dict[Msg, None] = dict.fromkeys(node.own)
        for r in sorted(rounds):
            msgs.update(dict.fromkeys(q for q, _ in st.proposals.get(r, ())))
        for key, v in st.book.votes.items():
            if key[0] in rounds:
                msgs[v] = None
        for key, vs in st.book.conflicts.items():
            if key[0] in rounds:
                msgs.update(dict.fromkeys(vs))
        return list(msgs)

    def send_garbage(self, node: SimNode) -> None:
        rng = self.rng
        h = max(n.state.height for n in self.nodes)
        for _ in range(3):
            dst = rng.randrange(self.sc.n)
            if dst == node.index:
                continue
            kind = rng.randrange(5)
            typ = rng.choice((VoteType.PREVOTE, VoteType.PRECOMMIT))
            height = max(1, h + rng.randint(-1, 3))
            rnd = rng.choice((0, 1, 2, rng.randint(0, 10**9)))
            value = rng.choice((None, rng.randbytes(32)))
            msg: Msg
            if kind == 0:  # impersonation with a bad signature
                victim = self.nodes[rng.randrange(self.sc.n)].address
                msg = Vote(typ, height, rnd, value, victim, rng.randbytes(64))
            elif kind == 1:  # non-validator
                msg = Vote(typ, height, rnd, value, rng.randbytes(20), rng.randbytes(64))
            elif kind == 2:  # validly signed nonsense vote (may equivocate)
                msg = self.sign_vote(node, Vote(typ, height, rnd, value, node.address))
            elif kind == 3:  # validly signed random proposal
                vr = rng.randint(-2, 3)
                msg = self.sign_proposal(node, Proposal(height, rnd, rng.randbytes(32), vr,
                                                        node.address))
            else:  # corrupted copy of a real honest message
                honest = [m for n in self.nodes if n.kind == "honest" for m in n.own]
                if not honest:
                    continue
                real = rng.choice(honest)
                msg = Vote(real.type, real.height, real.round, rng.randbytes(32),
                           real.validator, real.signature) if isinstance(real, Vote) else \
                    Proposal(real.height, real.round, rng.randbytes(32), real.valid_round,
                             real.proposer, real.signature)
            self.send(node.index, dst, msg)

    def done(self) -> bool:
        return all(self.sc.target_height in n.decided
                   for n in self.nodes if n.kind == "honest")

    def run(self) -> SimResult:
        sc = self.sc
        for node in self.nodes:
            if node.kind not in ("silent", "garbage"):
                self.feed(node, NewHeight(1, self.vset))
            self.push(self.rng.randint(1, sc.gossip_interval_ms), "gossip", node.index)
        while self.queue and not self.done():
            at, _, kind, payload = heapq.heappop(self.queue)
            if at > sc.max_time_ms:
                break
            self.now = at
            if kind == "deliver":
                self.deliver(*payload)
            elif kind == "timeout":
                i, t = payload
                self.feed(self.nodes[i], t)
            elif kind == "gossip":
                self.gossip(payload)
        honest = [n.index for n in self.nodes if n.kind == "honest"]
        return SimResult(
            scenario=sc, honest=honest, byzantine=dict(sc.byzantine), vset=self.vset,
            decisions={n.index: dict(n.decided) for n in self.nodes},
            height_start={n.index: dict(n.height_start) for n in self.nodes},
            invalid_values=set(self.invalid), evidence=list(self.evidence),
            bad_certificates=list(self.bad_certs), end_time=self.now,
            stabilised_at=self.stabilised_at, dropped_bad_sig=self.dropped_bad_sig)


def run(sc: Scenario) -> SimResult:
    return Simulation(sc).run()
