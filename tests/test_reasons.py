"""The one reason table (api/reasons.py): complete, valid, and the one docs/errors.md shows.

The source of node/, api/ and protocol/ is walked (AST) for every reason tag raised or
answered; each must be in the table, so no route can answer a tag with a status of its
own. The REST half of "one tag, one status" (a full mempool is 503 on /v1/grants as on
/v1/records) is checked against a running node in tests/test_domain_api.py.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from yilian.api import reasons
from yilian.api.auth import ApiError
from yilian.api.errors import FRAMEWORK_REASONS
from yilian.api.rpc_errors import RpcError
from yilian.node.domain import GRANT_STATUS

ROOT = Path(__file__).resolve().parents[1]
WALKED = ("node", "api", "protocol")
DOC = ROOT / "docs" / "errors.md"
BEGIN = "<!-- reason table: generated from api/reasons.py, checked by tests/test_reasons.py -->"
END = "<!-- end of reason table -->"

# Callables that take a reason tag, and the position of that argument.
REASON_ARG = {
    "Rejected": 0, "ServiceError": 0, "ApiError": 0, "TxFailed": 0, "TokenError": 0,
    "RequestAuthError": 0, "Problem": 0, "http_status": 0, "rpc_error": 0, "_refusal": 0,
    "reason_response": 1, "_reject": 1,
}
# Tags raised but never answered: each says why.
NOT_ANSWERED = {
    "bad_secret": "node/rpc_tokens.py: the token secret file is unusable; the node does "
                  "not start",
}
TAG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # what a custodian's answer may carry


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _reason_args() -> list[tuple[str, ast.expr]]:
    """(where, the reason argument) of every call of a REASON_ARG callable in WALKED."""
    out = []
    for folder in WALKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = _name(node.func)
                index = REASON_ARG.get(name or "")
                if index is None or len(node.args) <= index:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                out.append((where, node.args[index]))
    return out


def test_the_walk_finds_the_raise_sites() -> None:
    found = Counter(where.split()[-1] for where, _ in _reason_args())
    for name in ("Rejected", "ServiceError", "ApiError", "TxFailed", "TokenError",
                 "RequestAuthError", "Problem"):
        assert found[name] > 0, f"no {name}(...) found: has it been renamed? {found}"


def test_every_reason_raised_is_in_the_table() -> None:
    missing = []
    for where, arg in _reason_args():
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if arg.value not in reasons.REASONS and arg.value not in NOT_ANSWERED:
                missing.append(f"{where}: {arg.value!r}")
        else:  # passing on a tag raised or listed elsewhere: exc.reason, reason, tag
            forwarded = (isinstance(arg, ast.Attribute) and arg.attr == "reason") or (
                isinstance(arg, ast.Name) and arg.id in ("reason", "tag"))
            assert forwarded, f"{where}: the reason must be a literal tag or a .reason"
    assert not missing, "add these tags to api/reasons.py (and docs/errors.md): " + \
        ", ".join(missing)


def test_grant_statuses_are_in_the_table() -> None:
    tags = {reason for code, (reason, _) in GRANT_STATUS.items() if code != 0}
    assert tags | {"refused"} <= set(reasons.REASONS)


def test_the_framework_statuses_keep_their_own_status() -> None:
    for status, tag in FRAMEWORK_REASONS.items():
        assert reasons.http_status(tag) == status, tag
    assert len(FRAMEWORK_REASONS) == 9, "two framework tags share a status"


def test_the_table_is_valid() -> None:
    seen: Counter[str] = Counter(tag for _, group in reasons.GROUPS for tag in group)
    assert [tag for tag, n in seen.items() if n > 1] == [], "a tag is in two groups"
    assert not set(NOT_ANSWERED) & set(reasons.REASONS)
    for tag, entry in reasons.REASONS.items():
        assert TAG.fullmatch(tag), tag
        assert 400 <= entry.http <= 599, (tag, entry)
        assert entry.rpc is None or entry.rpc in reasons.RPC_ERRORS, (tag, entry)
        assert entry.meaning and "\n" not in entry.meaning and "|" not in entry.meaning, tag
    for code, cls in reasons.RPC_ERRORS.items():
        assert issubclass(cls, RpcError) and cls.code == code


def test_a_node_too_busy_to_take_work_is_503_everywhere() -> None:
    for tag in ("mempool_full", "sender_limit", "waiting_full", "no_quorum", "no_commit",
                "custodian_unavailable"):
        assert reasons.http_status(tag) == 503, tag
        assert ApiError(tag, "busy").status == 503


def test_errors_take_their_status_and_code_from_the_table() -> None:
    assert ApiError("too_many_waiting", "x").status == 429
    err = reasons.rpc_error("mempool_full", "the mempool is full")
    assert err.to_json() == {"code": -32000, "message": "the mempool is full",
                             "data": {"reason": "mempool_full"}}
    assert reasons.rpc_error("token_expired", "expired").code == -40100
    with pytest.raises(KeyError, match="not a JSON-RPC answer"):
        reasons.rpc_error("record_not_found", "x")
    with pytest.raises(KeyError, match=r"api/reasons\.py"):
        ApiError("no_such_tag", "x")


def render_table() -> str:
    """docs/errors.md's table: one section per group of api/reasons.py."""
    parts = [BEGIN]
    for title, group in reasons.GROUPS:
        parts += ["", f"### {title}", "", "| reason | HTTP | JSON-RPC | meaning |",
                  "|---|---|---|---|"]
        parts += [f"| `{tag}` | {r.http} | {'—' if r.rpc is None else r.rpc} | {r.meaning} |"
                  for tag, r in group.items()]
    return "\n".join([*parts, "", END])


def test_docs_show_the_table() -> None:
    text = DOC.read_text()
    start, end = text.find(BEGIN), text.find(END)
    assert 0 <= start < end, f"{DOC} must hold the table between {BEGIN!r} and {END!r}"
    shown = text[start:end + len(END)]
    expected = render_table()
    assert shown == expected, f"docs/errors.md is out of date; its table must read:\n{expected}"
