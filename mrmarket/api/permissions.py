"""Role-based access for API views: deny by default; each view names the roles allowed to call it."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from mrmarket.roles import Role

PUBLIC: frozenset[str] = frozenset({"public"})


def user_roles(user: Any) -> frozenset[Role]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    names = set(user.groups.values_list("name", flat=True))
    roles = {r for r in Role if r.value in names}
    if user.is_staff:
        roles.add(Role.STAFF)
    return frozenset(roles)


class RolePermission(BasePermission):
    """Allows the call when the view's `allowed_roles` is PUBLIC or meets the caller's roles.

    A view that does not declare `allowed_roles` is refused for everyone: forgetting to think about access
    fails closed, and tests/test_api_access.py fails too.
    """

    message = "Your role does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        allowed: frozenset[str] | None = getattr(view, "allowed_roles", None)
        if allowed is None:
            return False
        if allowed == PUBLIC:
            return True
        return bool(user_roles(request.user) & allowed)
