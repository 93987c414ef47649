"""Demo data for `make demo` (never run in production): the staff login printed by the launcher."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db import transaction

from mrmarket.roles import GROUP_ROLES


@transaction.atomic
def ensure_demo_admin(*, username: str, password: str) -> User:
    user, _ = User.objects.get_or_create(username=username)
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in GROUP_ROLES]))
    return user
