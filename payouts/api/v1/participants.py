"""Participants (API v1, mounted at /api/v1/participants/): a nonce, joining by Sign-In with Ethereum, read-only
exchange keys, reports pushed from executors elsewhere, and a participant's status. Rate limits per identity:
docs/participants.md."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from mrmarket.api.permissions import user_roles
from mrmarket.errors import NotFound
from mrmarket.roles import Role
from mrmarket.siwe import siwe_claimed_address
from payouts import selectors, services

ADDRESS = r"^0x[0-9a-fA-F]{40}$"


def _user_id(request: Request) -> int:
    # Every view here allows a role, so the user is authenticated and has a primary key.
    pk = request.user.pk
    assert pk is not None
    return int(pk)


class RewardAddressThrottle(ScopedRateThrottle):
    """Keyed on the signed-in user and the reward address the message claims: one user cannot try an address
    without end, and nobody can spend another user's allowance for an address by sending bad messages naming it;
    a body without a readable address falls back to the user alone."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        message = request.data.get("message") if hasattr(request.data, "get") else None
        address = siwe_claimed_address(message) if isinstance(message, str) else None
        ident = f"user:{request.user.pk}:address:{address}" if address else f"user:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class UserThrottle(ScopedRateThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": f"user:{request.user.pk}"}


class ParticipantNonceApi(APIView):
    """A nonce for the signed-in operator's join: only their join can use it, so a signed message that leaks
    before it is used cannot be played by anyone else."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})
    throttle_classes = [UserThrottle]
    throttle_scope = "participant_nonce"

    class OutputSerializer(serializers.Serializer):
        nonce = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(request=None, responses={201: OutputSerializer}, operation_id="participants_nonce")
    def post(self, request: Request) -> Response:
        issued = services.participant_nonce_issue(owner_id=_user_id(request))
        body = {"nonce": issued.value, "expires_at": issued.expires_at}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class ParticipantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    chain_id = serializers.IntegerField(source="campaign.chain_id")
    campaign_address = serializers.CharField(source="campaign.address")
    reward_address = serializers.CharField()
    joined_at = serializers.DateTimeField()


class ParticipantJoinApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})
    throttle_classes = [RewardAddressThrottle]
    throttle_scope = "participant_join"

    class InputSerializer(serializers.Serializer):
        chain_id = serializers.IntegerField(min_value=1)
        campaign_address = serializers.RegexField(ADDRESS)
        message = serializers.CharField(max_length=4096, trim_whitespace=False)
        signature = serializers.RegexField(r"^(0x)?[0-9a-fA-F]{2,8192}$")
        mm_order_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=100
        )

    @extend_schema(request=InputSerializer, responses={200: ParticipantSerializer}, operation_id="participants_join")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        participant = services.participant_join(
            chain_id=v["chain_id"],
            campaign_address=v["campaign_address"],
            message=v["message"],
            signature=v["signature"],
            mm_order_ids=v["mm_order_ids"],
            owner_id=_user_id(request),
        )
        return Response(ParticipantSerializer(participant).data)


class ParticipantAccountSerializer(serializers.Serializer):
    exchange_account_id = serializers.IntegerField()
    exchange = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # DRF moves declared fields off the class
    api_key_hint = serializers.CharField()
    status = serializers.CharField()
    added_at = serializers.DateTimeField()


class ParticipantAccountEnrolApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})
    throttle_classes = [UserThrottle]
    throttle_scope = "participant_enrol"

    class InputSerializer(serializers.Serializer):
        exchange = serializers.RegexField(r"^[a-z0-9_]{1,32}$")
        label = serializers.CharField(max_length=64)  # type: ignore[assignment]  # see above
        api_key = serializers.CharField(max_length=256, write_only=True)
        secret = serializers.CharField(max_length=512, write_only=True, trim_whitespace=False)
        password = serializers.CharField(max_length=256, write_only=True, required=False, default="")

    @extend_schema(
        request=InputSerializer,
        responses={201: ParticipantAccountSerializer},
        operation_id="participants_accounts_enrol",
    )
    def post(self, request: Request, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        link = services.participant_account_enrol(
            participant_id=pk,
            owner_id=_user_id(request),
            exchange=v["exchange"],
            label=v["label"],
            api_key=v["api_key"],
            secret=v["secret"],
            password=v["password"],
        )
        account = link.exchange_account
        body = {
            "exchange_account_id": account.pk,
            "exchange": account.exchange,
            "label": account.label,
            "api_key_hint": account.api_key_hint,
            "status": account.status,
            "added_at": link.added_at,
        }
        return Response(ParticipantAccountSerializer(body).data, status=status.HTTP_201_CREATED)


class ParticipantReportsSubmitApi(APIView):
    """The operator of an attested executor elsewhere pushes the signed reports of its jobs on an enrolled
    read-only account (that executor answers report pulls only to its own controller)."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR})
    throttle_classes = [UserThrottle]
    throttle_scope = "participant_reports"

    class InputSerializer(serializers.Serializer):
        account_id = serializers.IntegerField(min_value=1, help_text="The enrolled read-only exchange account.")
        reports = serializers.ListField(
            child=serializers.JSONField(),
            min_length=1,
            max_length=100,
            help_text="Signed report envelopes ({report, digest, signature}), in chain order (docs/api/report-v1.md).",
        )

    class OutputSerializer(serializers.Serializer):
        stored = serializers.IntegerField(help_text="Reports new to the oracle; 0 when all were stored already.")

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="participants_reports_submit"
    )
    def post(self, request: Request, pk: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        stored = services.external_reports_submit(
            participant_id=pk, account_id=v["account_id"], owner_id=_user_id(request), envelopes=v["reports"]
        )
        return Response(self.OutputSerializer({"stored": stored}).data)


class ParticipantOrderSerializer(serializers.Serializer):
    mm_order_id = serializers.IntegerField()
    job_id = serializers.CharField()
    state = serializers.CharField()
    verified_reports = serializers.IntegerField()


class ParticipantEstimateSerializer(serializers.Serializer):
    epoch = serializers.IntegerField()
    as_of_ms = serializers.IntegerField(help_text="The estimate covers the epoch from its start until this time.")
    depth_points = serializers.IntegerField(help_text="D so far (integer points, docs/scoring.md).")
    volume_cents = serializers.IntegerField(help_text="V so far (hundredths of a quote unit).")
    share = serializers.CharField(help_text='The share of the epoch budget so far, a reduced fraction "num/den".')
    estimated_reward = serializers.CharField(help_text="Campaign token base units, if the epoch ended now.")
    estimated_reward_display = serializers.CharField(
        allow_null=True, help_text='In token units with the symbol ("12.5 USDT"); null when the decimals are unknown.'
    )
    flags = serializers.DictField(help_text="The scoring's flags so far (not_on_exchange, not_visible, …).")
    exclusions = serializers.ListField(child=serializers.DictField(), help_text="Fills left out of V, with reasons.")


class ParticipantStatusApi(APIView):
    """Operators see their own participants; auditors and staff see every one."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.OPERATOR, Role.AUDITOR, Role.STAFF})

    class OutputSerializer(serializers.Serializer):
        participant_id = serializers.IntegerField()
        chain_id = serializers.IntegerField()
        campaign_address = serializers.CharField()
        reward_address = serializers.CharField()
        joined_at = serializers.DateTimeField()
        accounts = ParticipantAccountSerializer(many=True)
        orders = ParticipantOrderSerializer(many=True)
        estimate = ParticipantEstimateSerializer(
            allow_null=True, help_text="The open epoch so far; null until the oracle has scored it once."
        )

    @extend_schema(responses=OutputSerializer, operation_id="participants_status")
    def get(self, request: Request, chain_id: int, campaign_address: str, reward_address: str) -> Response:
        participant = selectors.participant_get(
            chain_id=chain_id, campaign_address=campaign_address, reward_address=reward_address
        )
        if participant.owner_id != request.user.pk and not user_roles(request.user) & {Role.AUDITOR, Role.STAFF}:
            raise NotFound("this address has not joined this campaign")
        result = selectors.participant_status(participant=participant)
        return Response(self.OutputSerializer(result).data)
