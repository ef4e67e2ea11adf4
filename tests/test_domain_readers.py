"""The storage readers answer every domain view exactly as the contracts do through the EVM.

Random sequences of domain transactions (many of them reverting) go straight into blocks;
then every view is asked over pools of accounts, member ids, record ids, grants and
readers, once through the EVM (``Domain(views="evm")`` and raw calls) and once through
``yilian.node.domain_readers``, and the answers must be equal."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_canonical_address
from helpers import ADDRESSES, genesis_doc, make_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_domain_contracts import (
    ADMIN,
    AUDITOR,
    AUDITOR_CODE,
    BANK,
    BANK_CODE,
    CENTER_A,
    CENTER_A_CODE,
    CENTER_B,
    CENTER_B_CODE,
    ENTERPRISE,
    ENTERPRISE_CODE,
    NEW_CODE,
    NEWCOMER,
    OTHER_ENTERPRISE_CODE,
    STRANGER,
    _alloc,
    mid,
    rid_of,
)
from test_domain_contracts import Domain as Harness

from yilian.contracts.artifacts import load
from yilian.node.domain import Domain
from yilian.node.domain_readers import DomainReaders

ZERO = bytes(32)
ACCOUNTS = [ADMIN, CENTER_A, CENTER_B, ENTERPRISE, BANK, AUDITOR, NEWCOMER, STRANGER]
CODES = [CENTER_A_CODE, CENTER_B_CODE, ENTERPRISE_CODE, BANK_CODE, AUDITOR_CODE, NEW_CODE,
         OTHER_ENTERPRISE_CODE]
IDS = [mid(c) for c in CODES] + [ZERO]
RIDS = [rid_of(b"a"), rid_of(b"b"), rid_of(b"c", CENTER_B_CODE), rid_of(b"d", ENTERPRISE_CODE)]
REQUESTS = [keccak(bytes([i])) for i in range(3)]
T0 = 2_000_000_000

# Every view and pure function of the three ABIs is compared below, or listed here with
# why it has no reader.
NOT_READ = {
    ("Members", "valid_credit_code"): "pure: yilian.protocol.credit_code checks codes",
    ("Records", "MEMBERS"): "an immutable in the code: yilian.contracts.addresses",
    ("Grants", "MEMBERS"): "an immutable in the code: yilian.contracts.addresses",
    ("Grants", "RECORDS"): "an immutable in the code: yilian.contracts.addresses",
}
COMPARED = {
    ("Members", f) for f in ("role_of", "member_of", "account_info", "member_role",
                             "is_active", "get_member", "member_count")
} | {
    ("Records", f) for f in ("get_record", "get_version", "record_count", "owned_types")
} | {
    ("Grants", f) for f in ("grant_refusal", "check", "check_retry", "get_grant",
                            "grant_count", "used_requests")
}

code_ids = st.sampled_from([mid(c) for c in CODES])
subjects = st.sampled_from([mid(ENTERPRISE_CODE), mid(OTHER_ENTERPRISE_CODE), mid(NEW_CODE)])
grantees = st.sampled_from([mid(BANK_CODE), mid(CENTER_B_CODE), mid(AUDITOR_CODE),
                            mid(NEW_CODE)])
rids = st.sampled_from(RIDS)
centers = st.sampled_from([CENTER_A, CENTER_B])

OPS = st.one_of(
    st.tuples(st.just("add_member"), st.sampled_from([mid(NEW_CODE), mid(OTHER_ENTERPRISE_CODE)]),
              st.integers(1, 5), st.text(max_size=8), st.sampled_from([NEWCOMER, STRANGER])),
    st.tuples(st.just("add_account"), code_ids, st.sampled_from([NEWCOMER, STRANGER, BANK])),
    st.tuples(st.just("set_active"), code_ids, st.booleans()),
    st.tuples(st.just("publish"), st.sampled_from([CENTER_A, CENTER_B, CENTER_A, ENTERPRISE]),
              rids, st.integers(1, 3), st.integers(1, 7), subjects, st.booleans()),
    st.tuples(st.just("remove"), centers, rids, st.integers(1, 3)),
    st.tuples(st.just("grant"), st.sampled_from([ENTERPRISE, CENTER_A, CENTER_B, NEWCOMER]),
              grantees, subjects,
              st.one_of(st.tuples(st.sampled_from([2, 4, 16, 32, 34, 254]), st.just(ZERO)),
                        st.tuples(st.just(0), rids),
                        st.tuples(st.just(2), rids)),  # both: refused
              st.sampled_from([1, 2, 60, 10**7]), st.integers(1, 3)),
    st.tuples(st.just("revoke"), st.sampled_from([ENTERPRISE, CENTER_A, NEWCOMER]),
              st.integers(1, 4)),
    st.tuples(st.just("record_access"), centers, st.integers(0, 4), rids, st.integers(1, 2),
              grantees, st.sampled_from(REQUESTS)),
    st.tuples(st.just("record_access_many"), centers,
              st.lists(st.tuples(st.integers(0, 4), rids, st.integers(1, 2), grantees,
                                 st.sampled_from(REQUESTS)), min_size=1, max_size=3)),
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 2, 60, 10**6])),
)


def _apply(chain: Harness, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "tick":
        assert chain.timestamp is not None
        chain.timestamp += op[1]
        return
    if kind == "add_member":
        _, member, role, name, account = op
        chain.send(ADMIN, "Members", "add_member", member, role, name, b"\x09" * 32, "",
                   ADDRESSES[account])
    elif kind == "add_account":
        chain.send(ADMIN, "Members", "add_account", op[1], ADDRESSES[op[2]])
    elif kind == "set_active":
        chain.send(ADMIN, "Members", "set_active", op[1], op[2])
    elif kind == "publish":
        _, who, rid, version, rtype, subject, center_owns = op
        me = mid(CENTER_A_CODE if who != CENTER_B else CENTER_B_CODE)
        chain.send(who, "Records", "publish", rid, version, rtype, subject,
                   me if center_owns else subject, 1, keccak(rid + bytes([version])),
                   b"sealed", b"\x07" * 8)
    elif kind == "remove":
        chain.send(op[1], "Records", "remove", op[2], op[3])
    elif kind == "grant":
        _, who, grantee, subject, (types, rid), expiry, reads = op
        assert chain.timestamp is not None  # expiry: seconds after this block's time
        chain.send(who, "Grants", "grant", grantee, subject, types, rid, "audit",
                   chain.timestamp + expiry, reads)
    elif kind == "revoke":
        chain.send(op[1], "Grants", "revoke", op[2])
    elif kind == "record_access":
        _, who, gid, rid, version, reader, request = op
        chain.send(who, "Grants", "record_access", gid, rid, version, reader, request)
    elif kind == "record_access_many":
        chain.send(op[1], "Grants", "record_access_many", op[2])


def _compare(chain: Harness, evm: Domain, fast: Domain) -> int:
    """Ask every view both ways; returns how many answers were compared."""
    readers = fast.readers
    assert isinstance(readers, DomainReaders)
    s = fast.head_state()
    n = 0

    def same(got: Any, want: Any, what: str) -> None:
        nonlocal n
        n += 1
        assert got == want, f"{what}: reader {got!r} != EVM {want!r}"

    for who in ACCOUNTS:
        account = to_canonical_address(ADDRESSES[who])
        same(fast.role_of(account), evm.role_of(account), f"role_of({who})")
        same(fast.member_of(account), evm.member_of(account), f"member_of({who})")
        same(fast.standing(account), evm.standing(account), f"standing({who})")
        member, role = chain.call("Members", "account_info", ADDRESSES[who])
        same(readers.account_info(s, account), (bytes(member), role), f"account_info({who})")
    for member in IDS:
        same(fast.member(member), evm.member(member), f"get_member({member!r})")
        same(readers.member_role(s, member), chain.call("Members", "member_role", member),
             "member_role")
        same(readers.is_active(s, member), chain.call("Members", "is_active", member),
             "is_active")
    same(readers.member_count(s), chain.call("Members", "member_count"), "member_count")
    for rid in [*RIDS, ZERO]:
        same(fast.record(rid), evm.record(rid), "get_record")
        for version in range(4):
            same(fast.version(rid, version), evm.version(rid, version), "get_version")
    same(readers.record_count(s), chain.call("Records", "record_count"), "record_count")
    owners = [mid(CENTER_A_CODE), mid(CENTER_B_CODE), mid(ENTERPRISE_CODE), mid(NEW_CODE)]
    for owner in owners:
        for subject in [*owners[2:], mid(OTHER_ENTERPRISE_CODE)]:
            same(readers.owned_types(s, owner, subject),
                 chain.call("Records", "owned_types", owner, subject), "owned_types")
    count = readers.grant_count(s)
    same(count, chain.call("Grants", "grant_count"), "grant_count")
    readers_pool = [mid(BANK_CODE), mid(CENTER_B_CODE), mid(NEW_CODE)]
    for gid in range(count + 2):
        same(fast.grant(gid), evm.grant(gid), f"get_grant({gid})")
        for rid in [*RIDS, ZERO]:
            for reader in readers_pool:
                for retry in (False, True):
                    same(fast.check_grant(gid, rid, reader, retry=retry),
                         evm.check_grant(gid, rid, reader, retry=retry),
                         f"check(grant {gid}, retry {retry})")
    for request in REQUESTS:
        same(readers.used_requests(s, request), chain.call("Grants", "used_requests", request),
             "used_requests")
    for granter in owners:
        for subject in (mid(ENTERPRISE_CODE), mid(NEW_CODE)):
            for types in (2, 32, 34):
                for rid in (ZERO, RIDS[0], RIDS[2]):
                    same(fast.grant_refusal(granter, subject, types, rid),
                         evm.grant_refusal(granter, subject, types, rid), "grant_refusal")
    return n


@contextmanager
def history(ops: list[tuple[Any, ...]]) -> Iterator[tuple[Harness, Domain, Domain]]:
    """A fresh domain chain after ``ops``: the harness, the EVM views and the readers."""
    with tempfile.TemporaryDirectory() as tmp:
        node = make_node(Path(tmp), alloc=genesis_doc()["alloc"] | _alloc(), timestamp=T0)
        try:
            chain = Harness(node)
            chain.timestamp = T0 + 1
            for op in ops:
                _apply(chain, op)
            yield chain, Domain(node.core, views="evm"), Domain(node.core, views="reader")
        finally:
            node.stop()


def test_every_view_has_a_reader_or_a_reason() -> None:
    views = {(c, e["name"]) for c in ("Members", "Records", "Grants") for e in load(c).abi
             if e["type"] == "function" and e["stateMutability"] in ("view", "pure")}
    assert views == COMPARED | set(NOT_READ), (
        f"views without a reader: {sorted(views - COMPARED - set(NOT_READ))}")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(OPS, min_size=1, max_size=24))
def test_readers_equal_the_contracts_views(ops: list[tuple[Any, ...]]) -> None:
    with history(ops) as (chain, evm, fast):
        assert fast.readers is not None and evm.readers is None
        assert _compare(chain, evm, fast) >= 200


def test_a_scripted_history_covers_every_status() -> None:
    """One sequence that reaches each grant status and refusal, so the comparison above is
    known to see them all, not only by chance."""
    ops: list[tuple[Any, ...]] = [
        ("publish", CENTER_A, RIDS[0], 1, 1, mid(ENTERPRISE_CODE), False),
        ("publish", CENTER_A, RIDS[1], 1, 5, mid(ENTERPRISE_CODE), True),
        ("grant", ENTERPRISE, mid(BANK_CODE), mid(ENTERPRISE_CODE), (2, ZERO), 100, 1),
        ("grant", ENTERPRISE, mid(BANK_CODE), mid(ENTERPRISE_CODE), (2, ZERO), 11, 1),
        ("grant", ENTERPRISE, mid(BANK_CODE), mid(ENTERPRISE_CODE), (0, RIDS[0]), 10**7, 1),
        ("grant", CENTER_A, mid(CENTER_B_CODE), mid(ENTERPRISE_CODE), (32, ZERO), 10**7, 2),
        ("record_access", CENTER_A, 3, RIDS[0], 1, mid(BANK_CODE), REQUESTS[0]),
        ("revoke", CENTER_A, 4),
        ("set_active", mid(BANK_CODE), False),
        ("tick", 10),
        ("publish", CENTER_A, RIDS[0], 2, 1, mid(ENTERPRISE_CODE), False),
        ("remove", CENTER_A, RIDS[1], 1),
        ("grant", ENTERPRISE, mid(CENTER_B_CODE), mid(ENTERPRISE_CODE), (2, ZERO), 10**7, 3),
    ]
    with history(ops) as (chain, evm, fast):
        seen = {fast.check_grant(g, r, reader, retry=retry)
                for g in range(7) for r in [*RIDS, ZERO]
                for reader in (mid(BANK_CODE), mid(CENTER_B_CODE), mid(NEW_CODE))
                for retry in (False, True)}
        assert seen >= {0, 1, 2, 3, 4, 5, 6, 7}, seen
        # Views see the next block's time: grant 2 expires exactly then.
        head = chain.node.core.head().timestamp
        assert fast.grant(2) is not None and fast.grant(2)["expiry"] == head + 1
        assert fast.check_grant(2, RIDS[0], mid(CENTER_B_CODE)) == 3
        _compare(chain, evm, fast)
        # The owner suspended: its grant pauses (8), the same both ways.
        _apply(chain, ("set_active", mid(ENTERPRISE_CODE), False))
        assert fast.check_grant(5, RIDS[0], mid(CENTER_B_CODE)) == 8
        _compare(chain, evm, fast)
