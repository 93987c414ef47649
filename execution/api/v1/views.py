"""Exchange accounts for operators (API v1): enrol (the exchange is asked what the key can do), list, revoke.
Secrets are accepted, never returned."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution import accounts, operations, orders, selectors
from execution.domain.units import for_people
from execution.funds import asset_decimals
from execution.models import ExchangeAccount, MMOrder
from mrmarket.errors import NotFound
from mrmarket.exchanges.credentials import ExchangeCredentials
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
        account = accounts.exchange_account_enrol(
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
        account = accounts.exchange_account_revoke_owned(owner_id=_owner(request), account_id=pk)
        return Response(ExchangeAccountSerializer(account).data)


class TransitionSerializer(serializers.Serializer):
    event = serializers.CharField()
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    detail = serializers.DictField()
    created_at = serializers.DateTimeField()


class MMOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    exchange_account_id = serializers.IntegerField()
    symbol = serializers.CharField()
    funding_asset = serializers.CharField()
    funding_amount = serializers.CharField(help_text="Base units of the funding asset.")
    funding_amount_display = serializers.SerializerMethodField(help_text='In the asset\'s units ("1,000 USDT").')
    state = serializers.CharField()
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    strategy = serializers.DictField(help_text="Strategy name, params and risk asked for at creation.")
    job_id = serializers.CharField(help_text="The job on the executor; empty once released.")
    executor_url = serializers.CharField()
    executor_signing_key = serializers.CharField(help_text="The key its reports must be signed with.")
    campaign_chain_id = serializers.IntegerField(allow_null=True, help_text="The campaign it serves: its chain.")
    campaign_address = serializers.CharField(help_text="The campaign it serves (lower-case 0x); empty for none.")
    reward_address = serializers.CharField(help_text="Where its rewards are paid (lower-case 0x); empty for none.")
    reports = serializers.SerializerMethodField()
    timeline = TransitionSerializer(many=True, source="transitions.all")
    ledger = serializers.SerializerMethodField()

    def get_funding_amount_display(self, order: MMOrder) -> str:
        return for_people(int(order.funding_amount), asset_decimals(order.funding_asset), order.funding_asset)

    def to_representation(self, instance: MMOrder) -> dict[str, Any]:
        # A list passes every order's summary in its context, read at once; a single order reads its own, once for
        # both fields.
        listed = self.context.get("summaries") or {}
        self._summary = listed.get(instance.pk) or selectors.mm_order_summaries([instance])[instance.pk]
        return dict(super().to_representation(instance))

    @extend_schema_field(serializers.DictField(child=serializers.IntegerField(allow_null=True)))
    def get_reports(self, order: MMOrder) -> dict[str, int | None]:
        return self._summary.reports

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_ledger(self, order: MMOrder) -> dict[str, str]:
        return {account: str(amount) for account, amount in self._summary.ledger.items()}


class MMOrderListApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    class InputSerializer(serializers.Serializer):
        exchange_account_id = serializers.IntegerField(min_value=1)
        symbol = serializers.RegexField(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")
        funding_asset = serializers.RegexField(r"^[A-Z0-9]{1,20}$")
        funding_amount = serializers.RegexField(r"^[1-9][0-9]{0,37}$", help_text="Base units.")
        strategy = serializers.DictField(
            required=False,
            help_text="Optional: {name, params, risk, report_interval_seconds, sample_seconds}; "
            "defaults fill the rest at job start (sizes from the funding).",
        )
        # The campaign served and the reward address: all three or none; fixed at creation, no call changes them.
        campaign_chain_id = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, help_text="Optional: the chain of the campaign served."
        )
        campaign_address = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="Optional: the campaign served (0x address)."
        )
        reward_address = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=64,
            help_text="Where the campaign's rewards for this order go (0x address); required with a campaign.",
        )

    @extend_schema(responses=MMOrderSerializer(many=True), operation_id="mm_orders_list")
    def get(self, request: Request) -> Response:
        orders = list(selectors.mm_order_list(owner_id=_owner(request)))
        summaries = selectors.mm_order_summaries(orders)
        return Response(MMOrderSerializer(orders, many=True, context={"summaries": summaries}).data)

    @extend_schema(request=InputSerializer, responses={201: MMOrderSerializer}, operation_id="mm_orders_create")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = orders.mm_order_create(
            owner_id=_owner(request),
            exchange_account_id=v["exchange_account_id"],
            symbol=v["symbol"],
            funding_asset=v["funding_asset"],
            funding_amount=int(v["funding_amount"]),
            strategy=v.get("strategy"),
            campaign_chain_id=v.get("campaign_chain_id"),
            campaign_address=v.get("campaign_address") or None,
            reward_address=v.get("reward_address") or None,
        )
        return Response(MMOrderSerializer(order).data, status=status.HTTP_201_CREATED)


def _own_order(request: Request, pk: int) -> MMOrder:
    order = selectors.mm_order_list(owner_id=_owner(request)).filter(pk=pk).first()
    if order is None:
        raise NotFound(f"no MM order {pk} of yours")
    return order


class MMOrderDetailApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(responses=MMOrderSerializer, operation_id="mm_orders_retrieve")
    def get(self, request: Request, pk: int) -> Response:
        return Response(MMOrderSerializer(_own_order(request, pk)).data)


class MMOrderFundApi(APIView):
    """Start moving the order's funds to the exchange (queued; progress shows in the timeline)."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(request=None, responses={202: MMOrderSerializer}, operation_id="mm_orders_fund")
    def post(self, request: Request, pk: int) -> Response:
        order = operations.mm_order_fund_request(owner_id=_owner(request), order_id=pk)
        return Response(MMOrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class MMOrderStopApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(request=None, responses=MMOrderSerializer, operation_id="mm_orders_stop")
    def post(self, request: Request, pk: int) -> Response:
        stopped = operations.mm_order_stop_request(owner_id=_owner(request), order_id=pk)
        return Response(MMOrderSerializer(stopped).data)


class MMOrderResumeApi(APIView):
    """Resume a paused order whose job its executor halted (the kill switch): the executor resumes the job, then
    the order runs again. A pause resume cannot undo (the job ended) is refused with `not_resumable`: stop it."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(request=None, responses=MMOrderSerializer, operation_id="mm_orders_resume")
    def post(self, request: Request, pk: int) -> Response:
        resumed = operations.mm_order_resume_request(owner_id=_owner(request), order_id=pk)
        return Response(MMOrderSerializer(resumed).data)


class MMOrderWithdrawBackApi(APIView):
    """Bring a stopped order's funds back to custody with a treasury key of the same exchange account (queued:
    a worker opens the treasury key; progress shows in the order's state and timeline, refusals as alerts)."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    class InputSerializer(serializers.Serializer):
        treasury_account_id = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={202: MMOrderSerializer}, operation_id="mm_orders_withdraw_back")
    def post(self, request: Request, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = operations.mm_order_withdraw_back_request(
            owner_id=_owner(request), order_id=pk, treasury_account_id=data.validated_data["treasury_account_id"]
        )
        return Response(MMOrderSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class MMOrderRefundApi(APIView):
    """Refund an order that never traded, its funds (if any) in custody: created (a funding custody could not
    cover), funding before its transfer is signed, or failed with nothing of it outside custody. Done at once, not
    queued; a repeat returns the refunded order, anything else is refused with `not_refundable`."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})

    @extend_schema(request=None, responses=MMOrderSerializer, operation_id="mm_orders_refund")
    def post(self, request: Request, pk: int) -> Response:
        refunded = operations.mm_order_refund_request(owner_id=_owner(request), order_id=pk)
        return Response(MMOrderSerializer(refunded).data)
