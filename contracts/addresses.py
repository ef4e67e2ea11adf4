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
