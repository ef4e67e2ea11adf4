"""Runtime configuration of one node (``<home>/config.json``); one settings object.

Chain-wide parameters live in the genesis; this file holds what one operator may set
for their own node: addresses, limits, identity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from yilian.node.mempool import MempoolLimits


class ConfigError(ValueError):
    """The node configuration is malformed; the message names the field."""


@dataclass(frozen=True)
class RpcLimits:
    """What one client may make this node do (JSON-RPC, WebSocket, REST); every field is a
    positive integer in ``config.json``'s ``rpc`` object. Chosen so that no single client
    holds the node: see docs/chain-core.md "Bounded work" for the reasoning."""

    max_request_bytes: int = 5 * 1024 * 1024  # HTTP body or WebSocket message
    max_batch: int = 1000  # requests in one JSON-RPC batch (geth's default)
    gas_cap: int = 50_000_000  # gas of one eth_call / eth_estimateGas (geth's default)
    call_timeout_ms: int = 5_000  # wall time of one eth_call / eth_estimateGas (geth's)
    batch_gas: int = 100_000_000  # gas of all eth_call/eth_estimateGas in one batch
    batch_timeout_ms: int = 10_000  # wall time of one request or batch
    max_log_blocks: int = 10_000
    max_logs: int = 10_000
    max_ws_connections: int = 128  # open WebSocket connections, all clients
    max_ws_connections_per_ip: int = 16  # open WebSocket connections from one address
    max_ws_subscriptions: int = 100  # per connection
    max_ws_queue: int = 1_000  # messages waiting to be sent, per connection
    max_ws_queue_bytes: int = 1024 * 1024  # bytes waiting to be sent, per connection


@dataclass(frozen=True)
class RpcAuthConfig:
    """Who may use JSON-RPC and WebSocket (docs/rpc-auth.md).

    ``required``: null (the default) means a bearer token is required unless every address
    the node listens on is loopback; true or false forces it.
    """

    required: bool | None = None
    secret_file: str = "rpc-token.key"  # HS256 secret of this node's tokens, mode 0600
    token_ttl_s: int = 3600  # longest lifetime of a token a member obtains by signing
    challenge_ttl_s: int = 120  # a challenge must be signed within this time
    max_challenges: int = 10_000  # outstanding challenges kept (oldest dropped first)


@dataclass(frozen=True)
class PeerConfig:
    """A member node to dial: where it listens and the node key it must prove it holds."""

    name: str
    host: str
    port: int
    node_key: str  # 0x hex public key, as in genesis


@dataclass(frozen=True)
class NodeConfig:
    name: str = "node-1"
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    genesis_file: str = "genesis.json"
    data_dir: str = "data"
    # 20-byte address written as the block proposer (coinbase); hex string.
    proposer: str = "0x0000000000000000000000000000000000000000"
    # Consortium mode (p2p_port > 0): BFT consensus with the peers below.
    p2p_port: int = 0
    node_key_file: str = ""
    # The center's chain account (signs publications and access receipts) and its
    # encryption key (unwraps the data keys of the records it keeps): files, mode 0600.
    account_key_file: str = ""
    enc_key_file: str = ""
    validator: bool = True
    peers: tuple[PeerConfig, ...] = ()
    mempool: MempoolLimits = field(default_factory=MempoolLimits)
    rpc: RpcLimits = field(default_factory=RpcLimits)
    rpc_auth: RpcAuthConfig = field(default_factory=RpcAuthConfig)
    log_level: str = "info"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sub(cls: type[Any], doc: Any, where: str) -> Any:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must be an object")
    names = {f.name: f for f in fields(cls)}
    unknown = set(doc) - set(names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    for key, value in doc.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{where}.{key} must be a positive integer, got {value!r}")
    return cls(**doc)


def _rpc_auth(doc: Any) -> RpcAuthConfig:
    if not isinstance(doc, dict):
        raise ConfigError("rpc_auth must be an object")
    names = {f.name for f in fields(RpcAuthConfig)}
    if set(doc) - names:
        raise ConfigError(f"rpc_auth: unknown keys {sorted(set(doc) - names)}; known: "
                          f"{sorted(names)}")
    required = doc.get("required")
    if required is not None and not isinstance(required, bool):
        raise ConfigError(f"rpc_auth.required must be true, false or null, got {required!r}")
    if not isinstance(doc.get("secret_file", ""), str):
        raise ConfigError("rpc_auth.secret_file must be a string")
    numbers = {k: v for k, v in doc.items() if k not in ("required", "secret_file")}
    _sub(RpcAuthConfig, numbers, "rpc_auth")  # positive integers, named on error
    return RpcAuthConfig(**doc)


def _peers(doc: Any) -> tuple[PeerConfig, ...]:
    if not isinstance(doc, list):
        raise ConfigError("peers must be a list of {name, host, port, nodeKey}")
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or set(item) != {"name", "host", "port", "nodeKey"}:
            raise ConfigError(f"peers[{i}] must be an object with exactly name, host, port, "
                              "nodeKey")
        port = item["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"peers[{i}].port must be a TCP port number, got {port!r}")
        key = item["nodeKey"]
        if not isinstance(key, str) or not key.startswith("0x"):
            raise ConfigError(f"peers[{i}].nodeKey must be 0x hex")
        out.append(PeerConfig(str(item["name"]), str(item["host"]), port, key))
    return tuple(out)


def parse_config(doc: Any) -> NodeConfig:
    if not isinstance(doc, dict):
        raise ConfigError("config must be a JSON object")
    names = {f.name for f in fields(NodeConfig)}
    unknown = set(doc) - names
    if unknown:
        raise ConfigError(f"unknown config keys {sorted(unknown)}; known: {sorted(names)}")
    values = dict(doc)
    if "mempool" in values:
        values["mempool"] = _sub(MempoolLimits, values["mempool"], "mempool")
    if "rpc" in values:
        values["rpc"] = _sub(RpcLimits, values["rpc"], "rpc")
    if "rpc_auth" in values:
        values["rpc_auth"] = _rpc_auth(values["rpc_auth"])
    for key, lo in (("rpc_port", 1), ("p2p_port", 0)):
        port = values.get(key, 8545 if key == "rpc_port" else 0)
        if isinstance(port, bool) or not isinstance(port, int) or not lo <= port < 65536:
            raise ConfigError(f"{key} must be a TCP port number, got {port!r}")
    if "validator" in values and not isinstance(values["validator"], bool):
        raise ConfigError(f"validator must be true or false, got {values['validator']!r}")
    if "peers" in values:
        values["peers"] = _peers(values["peers"])
    for key in ("name", "host", "genesis_file", "data_dir", "proposer", "log_level",
                "node_key_file", "account_key_file", "enc_key_file"):
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"{key} must be a string, got {values[key]!r}")
    return NodeConfig(**values)


def load_config(home: Path) -> NodeConfig:
    path = home / "config.json"
    try:
        return parse_config(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; create the network with `yilian up` "
                          "or `yilian network init`") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
