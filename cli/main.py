"""The ``yilian`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from yilian.cli import launcher

DEFAULT_DIR = Path(".yilian")


@click.group()
def main() -> None:
    """yilian: a permissioned data-sharing chain for public-resource trading centers."""


@main.command()
@click.option("--nodes", default=4, show_default=True,
              help="Number of member centers (validators); 1 runs a single validator.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DIR,
              show_default=True, help="Where the network's nodes keep their data.")
@click.option("--base-port", default=8545, show_default=True, help="First RPC port to try.")
def up(nodes: int, data_dir: Path, base_port: int) -> None:
    """Start the local network in the background (restart stopped nodes of an existing one)."""
    try:
        network = launcher.up(data_dir, nodes=nodes, base_port=base_port)
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from exc
    first = network["nodes"][0]
    acct = network["accounts"][0]
    click.echo(f"yilian local network '{network['name']}' is up (chain id {network['chainId']})")
    for entry in network["nodes"]:
        click.echo(f"  {entry['name']}: rpc {entry['rpc']}  ws {entry['ws']}  pid {entry['pid']}")
        click.echo(f"    {_rpc_access(Path(entry['home']))}")
    click.echo("  contracts: " + ", ".join(f"{k} {v}" for k, v in network["contracts"].items()))
    for m in network.get("members", []):
        click.echo(f"  member {m['id']} {m['role']:<10} {m['account']} (keys in network.json; "
                   "local use only)")
    click.echo(f"  network file: {(data_dir / 'network.json').resolve()}")
    click.echo(f"  dev account 0: {acct['address']} (key in network.json; local use only)")
    click.echo("\nNext:")
    click.echo(f"  curl -s -X POST -H 'content-type: application/json' {first['rpc']} "
               "-d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}'")
    click.echo(f"  .venv/bin/python -c \"from web3 import Web3; print(Web3(Web3.HTTPProvider("
               f"'{first['rpc']}')).eth.block_number)\"")
    if first.get("api"):
        click.echo(f"  open {first['api']}/docs   # the /v1 REST API (records, grants, "
                   "receipts, members); SDK: README.md, docs/records.md")
    click.echo(f"  .ci/yilian status --data-dir {data_dir}")
    click.echo(f"  .ci/yilian down --data-dir {data_dir}")


def _rpc_access(home: Path) -> str:
    """Whether the node's JSON-RPC is open (loopback only) or needs a token."""
    from yilian.node.config import ConfigError, load_config
    from yilian.node.rpc_tokens import access_summary

    try:
        return access_summary(load_config(home))
    except ConfigError as exc:
        return f"JSON-RPC access unknown: {exc}"


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DIR,
              show_default=True)
def down(data_dir: Path) -> None:
    """Stop the local network's nodes cleanly (their data stays)."""
    try:
        stopped = launcher.down(data_dir)
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DIR,
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(data_dir: Path, as_json: bool) -> None:
    """Show whether each node runs and its head block."""
    try:
        rows = launcher.status(data_dir)
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    for r in rows:
        state = "running" if r.running else "stopped"
        head = "-" if r.head is None else str(r.head)
        click.echo(f"{r.name}: {state} pid={r.pid or '-'} head={head} rpc={r.rpc_url}")
    if not all(r.running for r in rows):
        sys.exit(1)


@main.group()
def network() -> None:
    """Define consortium networks."""


@network.command("init")
@click.option("--centers", default=4, show_default=True, help="Validator nodes (one per center).")
@click.option("--observers", default=0, show_default=True, help="Non-voting replica nodes.")
@click.option("--suite", type=click.Choice(["standard", "sm"]), default="standard",
              show_default=True, help="Crypto suite for node keys and consensus signatures.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="New directory for the genesis, node configs and keys.")
@click.option("--base-port", default=8545, show_default=True,
              help="Node i listens on base+2(i-1) (RPC) and base+2(i-1)+1 (p2p).")
@click.option("--block-interval-ms", default=500, show_default=True)
def network_init(centers: int, observers: int, suite: str, out: Path, base_port: int,
                 block_interval_ms: int) -> None:
    """Generate each node's keys (0600, only in its own directory), the genesis and configs."""
    from yilian.network_configs.generate import NetworkInitError, init_network

    try:
        net = init_network(out, centers=centers, observers=observers, suite=suite,
                           base_port=base_port, block_interval_ms=block_interval_ms)
    except NetworkInitError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"network '{net['name']}' ({suite} suite) written to {out.resolve()}")
    for entry in net["nodes"]:
        click.echo(f"  {entry['name']} ({entry['role']}): rpc {entry['rpc']}  p2p {entry['p2p']}")


@main.group()
def node() -> None:
    """Run a single node."""


@node.command("run")
@click.option("--home", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="Node home with config.json and genesis.json.")
def node_run(home: Path) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM."""
    from yilian.cli.runner import run_node
    from yilian.node.config import ConfigError
    from yilian.node.genesis import GenesisError
    from yilian.node.storage import StorageError

    try:
        run_node(home.resolve())
    except (ConfigError, GenesisError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc


@node.command("token")
@click.option("--home", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="Node home (its rpc_auth secret file signs the token).")
@click.option("--role", type=click.Choice(["center", "auditor", "enterprise", "financial",
                                           "admin"]), required=True,
              help="Permissions of the token (docs/rpc-auth.md has the table).")
@click.option("--member", default="",
              help="Credit code of the member it acts for; required for enterprise, "
                   "financial and admin tokens (their logs are filtered to this member).")
@click.option("--ttl", "ttl_s", default=3600, show_default=True, type=int,
              help="Lifetime in seconds (at most 30 days).")
@click.option("--label", default="cli", show_default=True,
              help="Who the token is for (its subject is operator:<label>).")
def node_token(home: Path, role: str, member: str, ttl_s: int, label: str) -> None:
    """Print a JSON-RPC bearer token signed with this node's secret (for the operator)."""
    from yilian.node.config import ConfigError, load_config
    from yilian.node.rpc_tokens import (
        FULL_VIEW_ROLES,
        OPERATOR_MAX_TTL_S,
        TokenError,
        TokenKey,
        secret_path,
    )
    from yilian.protocol.credit_code import CreditCodeError, to_bytes32

    if not 0 < ttl_s <= OPERATOR_MAX_TTL_S:
        raise click.ClickException(f"--ttl must be 1..{OPERATOR_MAX_TTL_S} seconds")
    if role not in FULL_VIEW_ROLES and not member:
        raise click.ClickException(f"a {role} token needs --member CODE (what it may see is "
                                   "filtered to that member)")
    try:
        if member:
            to_bytes32(member)
        config = load_config(home.resolve())
        key = TokenKey.load_or_create(secret_path(config, home.resolve()))
    except (CreditCodeError, ConfigError, TokenError) as exc:
        raise click.ClickException(str(exc)) from exc
    token, claims = key.issue(subject=f"operator:{label}", member=member, role=role,
                              ttl_s=ttl_s)
    click.echo(token)
    click.echo(f"# {role} token for {claims.subject}, expires at unix {claims.expires_at}; "
               "send it as 'Authorization: Bearer <token>'", err=True)


if __name__ == "__main__":
    main()
