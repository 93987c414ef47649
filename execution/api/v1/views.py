"""Exchange accounts for operators (API v1): enrol (the exchange is asked what the key can do), list, revoke.
Secrets are accepted, never returned."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution import selectors, services
from execution.credentials import ExchangeCredentials
from execution.models import ExchangeAccount
from mrmarket.errors import NotFound
from mrmarket.roles import Role


def _owner(request: Request) -> int:
    # The views allow operators only, so the user is authenticated and has a primary key.
    pk = request.user.pk
    assert pk is not None
    return int(pk)


class ExchangeAccountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    exchange = serializers.CharField()
    # DRF's metaclass moves declared fields off the class, so this does not shadow Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    role = serializers.CharField()
    status = serializers.CharField()
    api_key_hint = serializers.CharField()
    permissions = serializers.DictField(child=serializers.BooleanField())
    permissions_checked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExchangeAccountListApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    class InputSerializer(serializers.Serializer):
        exchange = serializers.RegexField(r"^[a-z0-9_]{1,32}$")
        label = serializers.CharField(max_length=64)  # type: ignore[assignment]  # see above
        role = serializers.ChoiceField(choices=ExchangeAccount.Role.values)
        api_key = serializers.CharField(max_length=256, write_only=True)
        secret = serializers.CharField(max_length=512, write_only=True, trim_whitespace=False)
        password = serializers.CharField(max_length=256, write_only=True, required=False, default="")

    @extend_schema(responses=ExchangeAccountSerializer(many=True), operation_id="exchange_accounts_list")
    def get(self, request: Request) -> Response:
        accounts = selectors.exchange_account_list(owner_id=_owner(request))
        return Response(ExchangeAccountSerializer(accounts, many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: ExchangeAccountSerializer}, operation_id="exchange_accounts_enrol"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        account = services.exchange_account_enrol(
            owner_id=_owner(request),
            exchange=v["exchange"],
            label=v["label"],
            role=v["role"],
            credentials=ExchangeCredentials(api_key=v["api_key"], secret=v["secret"], password=v["password"]),
        )
        return Response(ExchangeAccountSerializer(account).data, status=status.HTTP_201_CREATED)


class ExchangeAccountRevokeApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(request=None, responses=ExchangeAccountSerializer, operation_id="exchange_accounts_revoke")
    def post(self, request: Request, pk: int) -> Response:
        if not selectors.exchange_account_list(owner_id=_owner(request)).filter(pk=pk).exists():
            raise NotFound(f"no exchange account {pk} of yours")
        account = services.exchange_account_revoke(account_id=pk)
        return Response(ExchangeAccountSerializer(account).data)
