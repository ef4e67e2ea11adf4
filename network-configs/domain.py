"""The domain contracts (Members, Records, Grants) predeployed in genesis, members seeded.

:func:`domain_alloc` returns genesis ``alloc`` entries placing the three contracts at fixed
addresses with their constructors already run: each constructor really executes once in a
throwaway in-memory py-evm state, every storage slot it writes is recorded, and the final
runtime code (which embeds Vyper's immutables) and the final non-zero slot values are copied
to the fixed address. Nothing about the throwaway deployment address leaks into the result:
Records and Grants are constructed with the *fixed* addresses of the contracts they call.

Invariants:

* Deterministic: the same seeds give an identical alloc (same code, same storage).
* Seeds are validated in Python first, so a bad seed fails with a ``ValueError`` that names
  the seed and the problem rather than as an opaque constructor revert.
* Member ids are 18-character unified social credit codes (GB 32100-2015) in ASCII,
  right-padded with zero bytes to 32 bytes (:func:`yilian.protocol.credit_code.to_bytes32`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth._utils.address import generate_contract_address
from eth.db.atomic import AtomicDB
from eth.vm.spoof import SpoofTransaction
from eth_abi import encode
from eth_typing import Address
from eth_utils import is_hex_address, to_canonical_address, to_checksum_address

from yilian.contracts.addresses import (
    GRANTS_ADDRESS,
    MEMBERS_ADDRESS,
    RECORDS_ADDRESS,
    ROLE_ADMIN,
    ROLE_NAMES,
)
from yilian.contracts.artifacts import load
from yilian.node.genesis import chain_class
from yilian.protocol import credit_code

__all__ = ["MemberSeed", "domain_alloc"]

MAX_SEEDS = 64  # Members' constructor takes DynArray[Seed, 64]
_CONSTRUCTOR_GAS = 500_000_000
_SEED_ABI = "(bytes32,uint8,string,bytes,string,address)[]"


@dataclass(frozen=True)
class MemberSeed:
    """A founding member written into the Members contract at genesis."""

    id: str  # 18-character unified social credit code
    role: int  # ROLE_CENTER .. ROLE_ADMIN
    name: str
    enc_key: bytes  # X25519 public key (32 bytes) or SM2 public key (64 bytes x||y)
    endpoint: str  # the center's REST base URL; may be empty for non-centers
    account: str  # the 0x address that acts for the member


def _validate(seeds: Sequence[MemberSeed]) -> None:
    """Raise ValueError naming the first seed that Members' constructor would refuse."""
    if not seeds:
        raise ValueError("domain_alloc needs at least one member seed (an admin)")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} member seeds fit in genesis, got {len(seeds)}; "
                         "add the rest later with Members.add_member")
    ids: set[str] = set()
    accounts: set[bytes] = set()
    for i, s in enumerate(seeds):
        where = f"member seed {i} ({s.name!r})"
        credit_code.to_bytes32(s.id)  # raises with the reason
        if s.id in ids:
            raise ValueError(f"{where}: credit code {s.id} is used by an earlier seed")
        ids.add(s.id)
        if s.role not in ROLE_NAMES:
            raise ValueError(f"{where}: unknown role {s.role}; use one of "
                             + ", ".join(f"{r} ({n})" for r, n in ROLE_NAMES.items()))
        if not s.name or len(s.name.encode()) > 64:
            raise ValueError(f"{where}: the name must be 1..64 bytes of UTF-8")
        if len(s.enc_key) not in (32, 64):
            raise ValueError(f"{where}: the encryption key must be 32 bytes (X25519) or "
                             f"64 bytes (SM2 x||y), got {len(s.enc_key)}")
        if len(s.endpoint.encode()) > 128:
            raise ValueError(f"{where}: the endpoint must be at most 128 bytes")
        if not is_hex_address(s.account) or int(s.account, 16) == 0:
            raise ValueError(f"{where}: {s.account!r} is not a non-zero 0x account address")
        account = bytes(to_canonical_address(s.account))
        if account in accounts:
            raise ValueError(f"{where}: account {s.account} is used by an earlier seed")
        accounts.add(account)
    if not any(s.role == ROLE_ADMIN for s in seeds):
        raise ValueError(f"genesis needs an admin: give one seed role {ROLE_ADMIN} (admin)")


def _run_constructors(inits: Sequence[tuple[str, bytes]]) -> list[tuple[bytes, dict[int, int]]]:
    """Run each ``(artifact name, ABI-encoded constructor args)`` in a fresh in-memory state.

    Returns ``(runtime code, {slot: value})`` per contract, non-zero slots only. Raises
    RuntimeError with the revert data if a constructor fails.
    """
    chain = chain_class(1).from_genesis(AtomicDB(), {
        "difficulty": 0, "gas_limit": 2 * _CONSTRUCTOR_GAS, "timestamp": 0,
        "base_fee_per_gas": 0, "nonce": b"\0" * 8, "extra_data": b"",
    }, {})
    vm = chain.get_vm()
    state = vm.state
    written: dict[bytes, set[int]] = {}
    original: Callable[[Address, int, int], None] = state.set_storage

    def recording_set_storage(address: Address, slot: int, value: int) -> None:
        written.setdefault(bytes(address), set()).add(slot)
        original(address, slot, value)

    state.set_storage = recording_set_storage  # type: ignore[method-assign]
    deployer = Address(b"\0" * 20)
    out: list[tuple[bytes, dict[int, int]]] = []
    for nonce, (name, args) in enumerate(inits):
        unsigned = vm.create_unsigned_transaction(
            nonce=nonce, gas_price=0, gas=_CONSTRUCTOR_GAS, to=Address(b""), value=0,
            data=load(name).bytecode + args)
        computation = state.costless_execute_transaction(
            SpoofTransaction(unsigned, from_=deployer))  # type: ignore[arg-type]
        if computation.is_error:
            raise RuntimeError(f"{name} constructor failed: {computation.error!r} "
                               f"(output 0x{bytes(computation.output).hex()})")
        address = generate_contract_address(deployer, nonce)
        storage = {slot: state.get_storage(address, slot)
                   for slot in sorted(written.get(bytes(address), ()))}
        out.append((bytes(state.get_code(address)),
                    {slot: value for slot, value in storage.items() if value}))
    return out


def domain_alloc(seeds: Sequence[MemberSeed]) -> dict[str, dict[str, Any]]:
    """Genesis ``alloc`` entries for Members, Records and Grants at their fixed addresses.

    Members is constructed with ``seeds``, Records with :data:`MEMBERS_ADDRESS`, Grants with
    :data:`MEMBERS_ADDRESS` and :data:`RECORDS_ADDRESS`. Each entry is
    ``{"balance": "0x0", "code": "0x..", "storage": {"0x<slot>": "0x<value>"}}``.
    Raises ValueError for an invalid seed (bad credit code, unknown role, wrong key
    length, duplicate id or account, no admin).
    """
    _validate(seeds)
    seed_args = [
        (credit_code.to_bytes32(s.id), s.role, s.name, s.enc_key, s.endpoint,
         to_checksum_address(s.account))
        for s in seeds
    ]
    members = bytes(to_canonical_address(MEMBERS_ADDRESS))
    records = bytes(to_canonical_address(RECORDS_ADDRESS))
    built = _run_constructors([
        ("Members", encode([_SEED_ABI], [seed_args])),
        ("Records", encode(["address"], [members])),
        ("Grants", encode(["address", "address"], [members, records])),
    ])
    alloc: dict[str, dict[str, Any]] = {}
    for address, (code, storage) in zip((MEMBERS_ADDRESS, RECORDS_ADDRESS, GRANTS_ADDRESS),
                                         built, strict=True):
        alloc[address] = {
            "balance": "0x0",
            "code": "0x" + code.hex(),
            "storage": {hex(slot): hex(value) for slot, value in storage.items()},
        }
    return alloc
