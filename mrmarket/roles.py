"""The roles people have in the system; each is a Django auth group created by a data migration."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operators"  # run executors, enrol exchange keys, fund market-making orders
    CREATOR = "creators"  # open and fund campaigns
    AUDITOR = "auditors"  # read everything needed to check payouts and system health; change nothing
    STAFF = "staff"  # Django staff: the admin; not a group, the is_staff flag


GROUP_ROLES = (Role.OPERATOR, Role.CREATOR, Role.AUDITOR)
ALL_ROLES = frozenset(Role)
