"""``/docs`` and ``/redoc`` work offline, and the OpenAPI document describes ``/v1`` fully.

Offline: the pages reference only URLs the node itself serves (no http(s) URL to another
host, no protocol-relative ``//host`` URL), and each of those URLs answers 200 with the
asset. The OpenAPI document: every ``/v1`` operation declares the shared error response
(``{"error": {"reason", "message"}}``) for its 4xx/5xx statuses, and every operation whose
caller signs the request declares the four signature headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_client, make_node
from yilian.node.service import Node
from yilian.protocol.signed_request import (
    ACCOUNT_HEADER,
    AUDIENCE_HEADER,
    EXPIRES_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
)

# src/href attributes, url:/spec-url= settings, and any absolute or protocol-relative URL
_REFERENCES = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")
_ABSOLUTE = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")

# Operations that take no signature headers: each commits a transaction its caller signed,
# and the signed transaction is the authorisation.
UNSIGNED_V1 = {("post", "/v1/grants"), ("post", "/v1/grants/{grant_id}/revoke"),
               ("post", "/v1/members"),
               # the JSON-RPC login: the signed challenge in the body is the proof
               ("post", "/v1/auth/challenge"), ("post", "/v1/auth/token")}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = make_node(tmp_path_factory.mktemp("docs"))
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="module")
def client(node: Node) -> Iterator[TestClient]:
    with make_client(node) as c:
        yield c


def _references(html: str) -> set[str]:
    found = {a or b for a, b in _REFERENCES.findall(html)}
    found.update(_ABSOLUTE.findall(html))
    return found


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
    ("/redoc", ("redoc.standalone.js",)),
])
def test_docs_pages_use_only_assets_the_node_serves(client: TestClient, page: str,
                                                    assets: tuple[str, ...]) -> None:
    resp = client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    refs = _references(resp.text)
    foreign = sorted(r for r in refs if urlsplit(r).netloc not in ("", "testserver"))
    assert not foreign, f"{page} loads from other hosts: {foreign}"
    for asset in assets:
        assert any(r.endswith("/" + asset) for r in refs), f"{page} does not load {asset}"
    for ref in sorted(refs):
        path = urlsplit(ref).path
        assert path.startswith("/"), f"{page}: relative reference {ref!r}"
        got = client.get(path)
        assert got.status_code == 200, f"{page}: {path} answered {got.status_code}"
        assert len(got.content) > 0, f"{page}: {path} is empty"
        if path.endswith(".js"):
            assert len(got.content) > 100_000 and "javascript" in got.headers["content-type"]
        if path.endswith(".css"):
            assert "text/css" in got.headers["content-type"]


def _v1_operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        if path.startswith("/v1/"):
            for method, op in ops.items():
                yield method, path, op


def _resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def test_every_v1_operation_declares_the_error_shape(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    ops = list(_v1_operations(doc))
    assert len(ops) >= 15
    error = doc["components"]["schemas"]["ErrorResponse"]
    detail = _resolve(doc, error["properties"]["error"]["$ref"])
    assert {"reason", "message"} <= set(detail["required"])
    for method, path, op in ops:
        statuses = {int(s) for s in op["responses"] if s != "default"}
        assert {400, 401, 403, 404, 413, 422, 503} <= statuses, f"{method} {path}"
        for status in {s for s in statuses if s >= 300}:
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                f"{method} {path} {status}: {schema}")


def test_signed_v1_operations_declare_the_signature_headers(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    wanted = {ACCOUNT_HEADER, AUDIENCE_HEADER, NONCE_HEADER, EXPIRES_HEADER, SIGNATURE_HEADER}
    for method, path, op in _v1_operations(doc):
        params = [_resolve(doc, p["$ref"]) if "$ref" in p else p
                  for p in op.get("parameters", [])]
        headers = {p["name"] for p in params if p["in"] == "header" and p["required"]}
        if (method, path) in UNSIGNED_V1:
            assert not headers & wanted, f"{method} {path} takes no signature headers"
        else:
            assert wanted <= headers, f"{method} {path} lacks {sorted(wanted - headers)}"


def test_the_unsigned_operations_really_take_no_signature(client: TestClient) -> None:
    """The exceptions listed above are real: unsigned, such a request reaches its handler
    (a bad transaction is refused as such, not as a missing signature)."""
    for method, path in sorted(UNSIGNED_V1):
        resp = client.request(method, path.replace("{grant_id}", "1"),
                              json={"raw_transaction": "0x00"})
        assert resp.status_code != 401, f"{method} {path}: {resp.text}"


def test_the_assets_are_in_the_installed_package() -> None:
    import fastapi_offline

    static = Path(fastapi_offline.__file__).parent / "static"
    assert (static / "swagger-ui-bundle.js").stat().st_size > 100_000
    assert (static / "redoc.standalone.js").stat().st_size > 100_000
