"""JSON-RPC bearer tokens, the login text, the auth config and the loopback rule (units)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from yilian.api.rpc_auth import Challenges
from yilian.node.config import ConfigError, NodeConfig, RpcAuthConfig, parse_config
from yilian.node.rpc_tokens import (
    MEMBER_PERMISSIONS,
    ROLE_PERMISSIONS,
    TokenError,
    TokenKey,
    access_summary,
    auth_required,
    listens_on_loopback_only,
)
from yilian.protocol.rpc_login import LoginError, recover_login, sign_login

KEY = TokenKey(b"k" * 32)
OTHER = TokenKey(b"o" * 32)
ACCOUNT = Account.create()


def issue(role: str = "enterprise", ttl_s: int = 60, key: TokenKey = KEY,
          now: float = 1_000_000.0) -> str:
    token, _ = key.issue(subject=ACCOUNT.address, member="914403001922038216", role=role,
                         ttl_s=ttl_s, now=now)
    return token


def test_a_token_verifies_at_its_node_until_it_expires() -> None:
    claims = KEY.verify(issue(ttl_s=60), now=1_000_059.0)
    assert claims.subject == ACCOUNT.address and claims.role == "enterprise"
    assert claims.permissions == MEMBER_PERMISSIONS and not claims.full_view
    with pytest.raises(TokenError) as err:
        KEY.verify(issue(ttl_s=60), now=1_000_060.0)
    assert err.value.reason == "token_expired"


def test_another_nodes_token_is_refused() -> None:
    with pytest.raises(TokenError) as err:
        KEY.verify(issue(key=OTHER), now=1_000_000.0)
    assert err.value.reason == "invalid_token" and "not issued by this node" in str(err.value)


def test_a_forged_token_is_refused() -> None:
    header, payload, sig = issue().split(".")
    doc = json.loads(jwt.utils.base64url_decode(payload))
    doc["role"] = "auditor"
    doc["permissions"] = ["*:*"]
    forged = ".".join([header, jwt.utils.base64url_encode(json.dumps(doc).encode()).decode(),
                       sig])
    with pytest.raises(TokenError):
        KEY.verify(forged, now=1_000_000.0)
    # the "none" algorithm and a token signed with the public key id are refused too
    unsigned = jwt.encode({**doc, "exp": 2_000_000}, None, algorithm="none")
    with pytest.raises(TokenError):
        KEY.verify(unsigned, now=1_000_000.0)
    by_id = jwt.encode({**doc, "exp": 2_000_000}, KEY.key_id.encode() * 4, algorithm="HS256")
    with pytest.raises(TokenError):
        KEY.verify(by_id, now=1_000_000.0)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_string_is_a_token_error_or_nothing(text: str) -> None:
    with pytest.raises(TokenError):
        KEY.verify(text)


@pytest.mark.parametrize(("permissions", "method", "allowed"), [
    (("*:*",), "eth_getStorageAt", True),
    (("net:*",), "net_version", True),
    (("net:*",), "eth_chainId", False),
    (("eth:blockNumber",), "eth_blockNumber", True),
    (("eth:blockNumber",), "eth_blockNumberX", False),
    (("eth:getLogs",), "yilian_getCommitCertificate", False),
])
def test_permissions_follow_besus_namespace_rule(permissions: tuple[str, ...], method: str,
                                                  allowed: bool) -> None:
    token, _ = KEY.issue(subject="operator:t", member="", role="auditor", ttl_s=60)
    claims = KEY.verify(token)
    assert claims.permits("eth_getStorageAt")
    custom = type(claims)(claims.subject, "", "auditor", permissions, 0, 1, "x")
    assert custom.permits(method) is allowed


def test_member_roles_may_not_read_raw_state_or_all_receipts() -> None:
    for role in ("enterprise", "financial", "admin"):
        _, claims = KEY.issue(subject="operator:t", member="914403001922038216", role=role,
                                  ttl_s=60)
        for method in ("eth_getStorageAt", "eth_getProof", "eth_getBlockReceipts"):
            assert not claims.permits(method), (role, method)
        assert claims.permits("eth_sendRawTransaction") and claims.permits("eth_getLogs")
    assert ROLE_PERMISSIONS["center"] == ROLE_PERMISSIONS["auditor"] == ("*:*",)


def test_the_secret_file_is_created_0600_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "rpc-token.key"
    first = TokenKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TokenKey.load_or_create(path).key_id == first.key_id
    os.chmod(path, 0o644)
    with pytest.raises(TokenError) as err:
        TokenKey.load_or_create(path)
    assert "chmod 600" in str(err.value)


def test_the_login_signature_binds_chain_node_nonce_account_and_lifetime() -> None:
    nonce, node = "ab" * 16, "cd" * 8
    sig = sign_login(ACCOUNT.key, chain_id=7, node=node, nonce=nonce, ttl_s=600)
    assert recover_login(sig, chain_id=7, node=node, nonce=nonce, account=ACCOUNT.address,
                         ttl_s=600) == ACCOUNT.address
    for change in ({"chain_id": 8}, {"node": "ce" * 8}, {"nonce": "ac" * 16},
                   {"ttl_s": 3600}, {"account": Account.create().address}):
        args = {"chain_id": 7, "node": node, "nonce": nonce, "account": ACCOUNT.address,
                "ttl_s": 600, **change}
        with pytest.raises(LoginError):
            recover_login(sig, **args)  # type: ignore[arg-type]


def test_challenges_are_one_time_per_account_and_bounded() -> None:
    store = Challenges(ttl_s=10, max_entries=3)
    nonce, _ = store.issue("0xAbC", now=100.0)
    assert not store.take(nonce, "0xdef", now=101.0)  # another account
    assert store.take(nonce, "0xabc", now=101.0)
    assert not store.take(nonce, "0xabc", now=101.0)  # used
    late, _ = store.issue("0xabc", now=100.0)
    assert not store.take(late, "0xabc", now=110.0)  # expired
    for i in range(10):
        store.issue(f"0x{i}", now=200.0)
    assert len(store) == 3


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("192.168.1.20", False),
    ("no-such-host.invalid", False),
])
def test_only_loopback_listeners_stay_open(host: str, loopback: bool) -> None:
    assert listens_on_loopback_only(host) is loopback
    config = NodeConfig(host=host)
    assert auth_required(config) is not loopback
    assert ("loopback only" in access_summary(config)) is loopback
    assert auth_required(NodeConfig(host=host, rpc_auth=RpcAuthConfig(required=True)))


def test_auth_config_is_parsed_strictly() -> None:
    assert parse_config({"rpc_auth": {"required": True, "token_ttl_s": 60}}).rpc_auth == \
        RpcAuthConfig(required=True, token_ttl_s=60)
    assert parse_config({"rpc_auth": {"required": None}}).rpc_auth.required is None
    for bad, field in (({"required": "yes"}, "required"), ({"token_ttl_s": 0}, "token_ttl_s"),
                       ({"secret_file": 3}, "secret_file"), ({"nope": 1}, "nope")):
        with pytest.raises(ConfigError, match=field):
            parse_config({"rpc_auth": bad})
    summary = access_summary(NodeConfig(host="0.0.0.0", rpc_auth=RpcAuthConfig(required=False)))
    assert "NOT for a shared network" in summary


def test_the_operator_mints_a_token_with_the_node_secret(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from yilian.cli.main import _rpc_access, main

    (tmp_path / "config.json").write_text(json.dumps({"host": "0.0.0.0"}))
    runner = CliRunner()
    out = runner.invoke(main, ["node", "token", "--home", str(tmp_path), "--role", "auditor",
                               "--ttl", "600", "--label", "ops"])
    assert out.exit_code == 0, out.output
    token = out.stdout.strip().splitlines()[0]
    claims = TokenKey.load_or_create(tmp_path / "rpc-token.key").verify(token)
    assert claims.subject == "operator:ops" and claims.full_view and claims.is_operator
    refused = runner.invoke(main, ["node", "token", "--home", str(tmp_path), "--role",
                                   "enterprise"])
    assert refused.exit_code != 0 and "--member" in refused.output
    assert "bearer token" in _rpc_access(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"host": "127.0.0.1"}))
    assert _rpc_access(tmp_path) == "JSON-RPC open: listening on loopback only"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.just("Bearer ").flatmap(
    lambda p: st.text(max_size=200).map(lambda t: p + t))))
def test_any_authorization_header_is_a_token_error_or_nothing(header: str) -> None:
    from yilian.api.rpc_auth import verify_bearer

    with pytest.raises(TokenError):
        verify_bearer(None, KEY, header)  # type: ignore[arg-type]  # never reached: bad token
