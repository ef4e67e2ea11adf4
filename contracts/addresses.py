"""Fixed addresses of the domain contracts, predeployed in every yilian genesis, their
roles, and the gas limit a domain transaction is sent with.

The node, the SDK and the genesis generator all read them from here.
"""

from __future__ import annotations

from typing import Final

MEMBERS_ADDRESS: Final = "0x00000000000000000000000000000000000A1100"
RECORDS_ADDRESS: Final = "0x00000000000000000000000000000000000a1101"
GRANTS_ADDRESS: Final = "0x00000000000000000000000000000000000A1102"

ROLE_CENTER: Final = 1
ROLE_FINANCIAL: Final = 2
ROLE_ENTERPRISE: Final = 3
ROLE_AUDITOR: Final = 4
ROLE_ADMIN: Final = 5
ROLE_NAMES: Final = {ROLE_CENTER: "center", ROLE_FINANCIAL: "financial",
                     ROLE_ENTERPRISE: "enterprise", ROLE_AUDITOR: "auditor", ROLE_ADMIN: "admin"}
ROLES_BY_NAME: Final = {v: k for k, v in ROLE_NAMES.items()}

# Gas limit of a domain transaction (SDK and center account): above any domain call.
DOMAIN_TX_GAS: Final = 2_000_000

# Grants.record_access_many: at most 32 items (the contract's DynArray bound). Gas limit
# of a batch of n items: measured 1,853,806 gas for 32 items on 32 distinct grants and
# records (the costliest shape: every slot cold), 99,173 for one; this leaves ~14%.
MAX_ACCESS_ITEMS: Final = 32
ACCESS_GAS_BASE: Final = 60_000
ACCESS_GAS_PER_ITEM: Final = 64_000


def max_access_items(max_tx_gas: int) -> int:
    """How many reads one ``record_access_many`` transaction may record on a network whose
    genesis caps a transaction at ``max_tx_gas``: 32 at the default cap (3,000,000)."""
    return max(0, min(MAX_ACCESS_ITEMS, (max_tx_gas - ACCESS_GAS_BASE) // ACCESS_GAS_PER_ITEM))


def access_many_gas(items: int) -> int:
    """The gas limit a ``record_access_many`` transaction of ``items`` items is sent with."""
    if not 1 <= items <= MAX_ACCESS_ITEMS:
        raise ValueError(f"a batch holds 1..{MAX_ACCESS_ITEMS} items, not {items}")
    return ACCESS_GAS_BASE + ACCESS_GAS_PER_ITEM * items
