"""Cross-cutting API v1 operations: who am I, obtain a token, system status."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mrmarket import selectors
from mrmarket.api.permissions import PUBLIC, RolePermission, user_roles
from mrmarket.errors import InvalidCredentials, LoginLockedOut
from mrmarket.login_security import AuthRateThrottle
from mrmarket.roles import ALL_ROLES, Role
from mrmarket.tasks import refresh_system_status


class SchemaApi(SpectacularAPIView):
    """The OpenAPI document of this API version (public: it describes, it grants nothing)."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    permission_classes = [RolePermission]  # spectacular's own default is AllowAny


class MeApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = ALL_ROLES

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        roles = sorted(r.value for r in user_roles(request.user))
        return Response(self.OutputSerializer({"username": request.user.get_username(), "roles": roles}).data)


class TokenObtainApi(APIView):
    """Exchange a username and password for a new API token (machine clients). The token is shown once: only
    its digest is stored, and it expires (REST_KNOX TOKEN_TTL)."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []
    throttle_classes = [AuthRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False, write_only=True)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expiry = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="auth_token_create")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The Django request: the lockout backend records the attempt on it and flags a lockout there.
        user = authenticate(request._request, **data.validated_data)
        if getattr(request._request, "axes_locked_out", False):
            raise LoginLockedOut("Too many failed login attempts. Try again later.")
        if user is None or not user.is_active:
            raise InvalidCredentials("Unknown username or wrong password.")
        instance, token = AuthToken.objects.create(user=user)
        return Response(self.OutputSerializer({"token": token, "expiry": instance.expiry}).data)


class CheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "fail", "not_configured"])
    ok = serializers.BooleanField()
    # DRF's metaclass moves declared fields off the class, so this does not shadow Field.required.
    required = serializers.BooleanField()  # type: ignore[assignment]
    detail = serializers.CharField()
    checked_at = serializers.DateTimeField()


class SystemStatusApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.STAFF, Role.AUDITOR})

    class OutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField()
        components = CheckSerializer(many=True)

    @extend_schema(responses=OutputSerializer, operation_id="system_status_retrieve")
    def get(self, request: Request) -> Response:
        checks = selectors.system_status()
        payload = {"ok": all(c.ok for c in checks), "components": [c.as_json() for c in checks]}
        return Response(self.OutputSerializer(payload).data)


class SystemStatusRefreshApi(APIView):
    """Queue a full status check on a worker; its result is broadcast to the live status page."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.STAFF})

    class OutputSerializer(serializers.Serializer):
        queued = serializers.BooleanField()
        request_id = serializers.CharField()

    @extend_schema(request=None, responses={202: OutputSerializer}, operation_id="system_status_refresh")
    def post(self, request: Request) -> Response:
        transaction.on_commit(refresh_system_status.delay)
        body = {"queued": True, "request_id": request._request.request_id}  # type: ignore[attr-defined]
        return Response(self.OutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)
