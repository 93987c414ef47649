"""What an exchange API key may do, and what each role of key must and must not be able to do. Pure.

Least privilege: a key gets exactly the rights its job needs. A trading key that could also withdraw would
let anyone who obtains it (or a compromised executor) move the funds off the exchange, so it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeyRole(StrEnum):
    READ_ONLY = "read_only"  # monitoring, scoring
    TRADING = "trading"  # market making
    TREASURY = "treasury"  # withdrawals back to custody


@dataclass(frozen=True)
class KeyPermissions:
    read: bool
    trade: bool
    withdraw: bool

    def as_dict(self) -> dict[str, bool]:
        return {"read": self.read, "trade": self.trade, "withdraw": self.withdraw}


# role → (rights it needs, rights it must not have)
ROLE_RULES: dict[KeyRole, tuple[frozenset[str], frozenset[str]]] = {
    KeyRole.READ_ONLY: (frozenset({"read"}), frozenset({"trade", "withdraw"})),
    KeyRole.TRADING: (frozenset({"read", "trade"}), frozenset({"withdraw"})),
    KeyRole.TREASURY: (frozenset({"read", "withdraw"}), frozenset({"trade"})),
}


def role_problems(role: KeyRole, permissions: KeyPermissions) -> list[str]:
    """Why a key does not fit a role (empty when it fits), one sentence per permission."""
    granted = {name for name, value in permissions.as_dict().items() if value}
    needed, forbidden = ROLE_RULES[role]
    problems = [
        f"the key lacks the {name} permission, which a {role.value} key needs" for name in sorted(needed - granted)
    ]
    problems += [
        f"the key has the {name} permission, which a {role.value} key must not have"
        for name in sorted(forbidden & granted)
    ]
    return problems
