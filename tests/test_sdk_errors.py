"""The SDK's errors for a new user: one base class, node URLs, a wrong encryption key.

Runs the SDK against an in-process node (the harness of ``test_domain_api``).
"""

from __future__ import annotations

from unittest import mock

import pytest

from tests import test_domain_api as domain
from tests.domain_node import API, InProcessSession
from tests.test_domain_api import (
    ENTERPRISE,
    Env,
    Published,
    bank,
    enterprise,
    plaintext_of,
)
from yilian.protocol import credit_code, envelope, standard
from yilian.sdk import client as sdk_client
from yilian.sdk import errors
from yilian.sdk.center import Center
from yilian.sdk.client import Client, node_base_url
from yilian.sdk.enterprise import Enterprise
from yilian.sdk.grantee import Grantee, verify_and_open

env = domain.env  # the in-process node and its members (module-scoped fixtures)
published = domain.published


@pytest.mark.parametrize("name", ["RecordInvalid", "CreditCodeError", "TamperedError",
                                  "UnwrapError", "CanonicalError", "EnvelopeError",
                                  "InvalidArgument", "NotANode", "WrongEncryptionKey",
                                  "Refused", "CustodianUnavailable"])
def test_every_sdk_error_is_a_yilian_error(name: str) -> None:
    assert issubclass(getattr(errors, name), errors.YilianError)


def test_errors_raised_by_shared_code_are_caught_as_yilian_errors(env: Env) -> None:
    """What a user's ``except YilianError`` sees, raised for real by SDK calls."""
    center = Center(env.sdk(env.center_key))
    bad = dict(standard.example_record("basic", ENTERPRISE), registered_capital="-5")
    with pytest.raises(errors.YilianError) as err:
        center.publish_record("basic", ENTERPRISE, bad)
    assert isinstance(err.value, standard.RecordInvalid)
    with pytest.raises(errors.YilianError) as err:
        Enterprise(env.member_sdk(ENTERPRISE), ENTERPRISE).grant(
            ENTERPRISE[:-1] + "0", types=["basic"], purpose="p", max_reads=1,
            valid_for_s=60)
    assert isinstance(err.value, credit_code.CreditCodeError)
    with pytest.raises(errors.YilianError) as err:
        envelope.unwrap_key("standard", envelope.generate_enc_keypair("standard").private,
                            b"\0" * envelope.wrapped_key_size("standard"))
    assert isinstance(err.value, envelope.UnwrapError)
    with pytest.raises(errors.YilianError) as err:
        verify_and_open("standard", {"ciphertext": "0x00", "digest": "0x" + "00" * 32,
                                     "event_digest": "0x" + "00" * 32}, b"\0" * 32)
    assert isinstance(err.value, envelope.TamperedError)
    with pytest.raises(errors.YilianError):
        Enterprise(env.member_sdk(ENTERPRISE), ENTERPRISE).grant(
            env.member("financial")["id"], types=["basic"], purpose="p", max_reads=1)


@pytest.mark.parametrize(("given", "base"), [
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
    ("http://127.0.0.1:8545/rpc", "http://127.0.0.1:8545"),
    ("http://127.0.0.1:8545/rpc/", "http://127.0.0.1:8545"),
    ("ws://127.0.0.1:8545/ws", "http://127.0.0.1:8545"),
    ("https://node.example/yilian/rpc", "https://node.example/yilian"),
])
def test_node_base_url(given: str, base: str) -> None:
    assert node_base_url(given) == base


def test_a_rpc_url_works_as_the_node_url(env: Env) -> None:
    with mock.patch.object(sdk_client.requests, "Session", lambda: InProcessSession(env.http)):
        client = Client(API + "/rpc", env.center_key)
        assert client.chain_id == env.chain_id and client.api_url == API
        with pytest.raises(errors.NotANode) as err:
            Client(API + "/v1/members", env.center_key)
    assert "base URL" in str(err.value) and "/v1/members" in str(err.value)
    with pytest.raises(errors.NotANode):
        Client("127.0.0.1:8545", env.center_key)


def test_a_wrong_encryption_key_fails_before_a_read_is_spent(env: Env,
                                                               published: Published) -> None:
    desk = env.member("financial")
    g = enterprise(env).grant(desk["id"], types=["basic"], purpose="one read", max_reads=1,
                              valid_for_s=3600)
    wrong = "0x" + envelope.generate_enc_keypair("standard").private.hex()
    with pytest.raises(errors.WrongEncryptionKey) as err:
        Grantee(env.sdk(desk["privateKey"], wrong)).read(published.record_id, g["grant_id"])
    assert desk["encPublicKey"].lower() in str(err.value)
    state = env.call(env.member("auditor")["privateKey"], "GET", f"/v1/grants/{g['grant_id']}")
    assert state.json()["reads"] == 0  # nothing spent
    # the one allowed read is still there for the right key
    assert bank(env).read(published.record_id, g["grant_id"]).plaintext == plaintext_of(published)
