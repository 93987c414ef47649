"""Public campaign discovery and detail (API v1)."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from web3 import Web3

from campaigns import selectors, services
from campaigns.errors import CampaignNotFound
from campaigns.node import node_answers
from mrmarket.api.permissions import PUBLIC
from mrmarket.roles import Role

ADDRESS_RE = r"^0x[0-9a-fA-F]{40}$"


class TokenSerializer(serializers.Serializer):
    address = serializers.RegexField(ADDRESS_RE)
    symbol = serializers.CharField(max_length=20)
    decimals = serializers.IntegerField(min_value=0, max_value=36)


class CampaignSerializer(serializers.Serializer):
    chain_id = serializers.IntegerField()
    address = serializers.CharField()
    creator = serializers.CharField()
    token = serializers.CharField()
    recording_oracle = serializers.CharField()
    reputation_oracle = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    epoch_seconds = serializers.IntegerField()
    dispute_window_seconds = serializers.IntegerField()
    budget = serializers.CharField(help_text="Reward token base units (decimal string).")
    fee_bps = serializers.IntegerField()
    metadata_hash = serializers.CharField()
    metadata_uri = serializers.CharField()
    exchange = serializers.CharField(help_text="From the verified metadata; empty when we do not hold it.")
    pair = serializers.CharField()
    funded = serializers.BooleanField()
    paid_out = serializers.CharField()
    refunded = serializers.CharField()
    budget_display = serializers.SerializerMethodField(help_text="The budget in token units, for people.")
    paid_out_display = serializers.SerializerMethodField()
    refunded_display = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    def _display(self, campaign: Any, units: int) -> str | None:
        documents = self.context.get("metadata")
        if documents is None:
            metadata = selectors.campaign_metadata_get(metadata_hash=campaign.metadata_hash)
        else:
            metadata = documents.get(campaign.metadata_hash.lower())
        return selectors.token_units_text(campaign, units, metadata)

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="Null when the token's decimals are unknown.")
    )
    def get_budget_display(self, campaign: Any) -> str | None:
        return self._display(campaign, campaign.budget)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_paid_out_display(self, campaign: Any) -> str | None:
        return self._display(campaign, campaign.paid_out)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_refunded_display(self, campaign: Any) -> str | None:
        return self._display(campaign, campaign.refunded)

    @extend_schema_field(serializers.ChoiceField(choices=[s.value for s in selectors.CampaignStatus]))
    def get_status(self, campaign: Any) -> str:
        return selectors.campaign_status(campaign).value


class CampaignListApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    class FilterSerializer(serializers.Serializer):
        chain_id = serializers.IntegerField(required=False, min_value=1)
        status = serializers.ChoiceField(choices=[s.value for s in selectors.CampaignStatus], required=False)
        token = serializers.RegexField(r"^0x[0-9a-fA-F]{40}$", required=False)
        exchange = serializers.RegexField(r"^[a-z0-9_]{1,32}$", required=False)
        pair = serializers.RegexField(r"^[A-Za-z0-9]{1,20}/[A-Za-z0-9]{1,20}$", required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("chain_id", int),
            OpenApiParameter("status", str, enum=[s.value for s in selectors.CampaignStatus]),
            OpenApiParameter("token", str),
            OpenApiParameter("exchange", str),
            OpenApiParameter("pair", str, description="BASE/QUOTE"),
        ],
        responses=CampaignSerializer(many=True),
        operation_id="campaigns_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        status = selectors.CampaignStatus(data["status"]) if "status" in data else None
        campaigns = selectors.campaign_list(
            chain_id=data.get("chain_id"),
            status=status,
            token=data.get("token"),
            exchange=data.get("exchange"),
            pair=data.get("pair"),
        )
        documents = selectors.campaign_metadata_documents(campaigns)
        return Response(CampaignSerializer(campaigns, many=True, context={"metadata": documents}).data)


class CampaignDetailApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses=CampaignSerializer, operation_id="campaigns_retrieve")
    def get(self, request: Request, chain_id: int, address: str) -> Response:
        campaign = selectors.campaign_get(chain_id=chain_id, address=address)
        if campaign is None:
            raise CampaignNotFound(f"no campaign {address} on chain {chain_id}")
        return Response(CampaignSerializer(campaign).data)


class CampaignPrepareApi(APIView):
    """Build a campaign for the creator's wallet: metadata, its hash, the address, the unsigned transactions."""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.CREATOR})

    class InputSerializer(serializers.Serializer):
        creator = serializers.RegexField(ADDRESS_RE)
        template = serializers.CharField(max_length=40)
        reward_token = TokenSerializer()
        exchange = serializers.CharField(max_length=32)
        pair = serializers.CharField(max_length=41)
        start = serializers.IntegerField(min_value=0)
        end = serializers.IntegerField(min_value=0)
        budget = serializers.RegexField(r"^[1-9][0-9]{0,37}$", help_text="Reward token base units.")
        recording_oracle = serializers.RegexField(ADDRESS_RE)
        reputation_oracle = serializers.RegexField(ADDRESS_RE)
        scoring = serializers.DictField(required=False, help_text="Edits within the template's bounds.")
        title = serializers.CharField(max_length=120, required=False, default="")

    class OutputSerializer(serializers.Serializer):
        metadata = serializers.DictField()
        metadata_hash = serializers.CharField()
        metadata_uri = serializers.CharField()
        predicted_address = serializers.CharField()
        salt = serializers.CharField()
        transactions = serializers.ListField(child=serializers.DictField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="campaigns_prepare")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        with node_answers():  # the chain's id, the factory's prediction and the exchange's listing are read
            prepared = services.campaign_prepare(
                creator=v["creator"],
                template_id=v["template"],
                reward_token=dict(v["reward_token"]),
                exchange=v["exchange"],
                pair=v["pair"],
                start=v["start"],
                end=v["end"],
                budget=int(v["budget"]),
                oracles={
                    "recording": v["recording_oracle"],
                    "reputation": v["reputation_oracle"],
                    "fee_recipient": v["reputation_oracle"],
                },
                scoring_overrides=v.get("scoring"),
                title=v["title"],
                uri_base=request.build_absolute_uri("/api/v1/campaigns/metadata"),
                created_by_id=request.user.pk,
            )
        return Response(self.OutputSerializer(prepared.__dict__).data)


class CampaignFundingCheckApi(APIView):
    """Before the wallet sends create-and-fund: is the budget approved to the campaign address?"""

    allowed_roles: ClassVar[frozenset[str]] = frozenset({Role.CREATOR})

    class InputSerializer(serializers.Serializer):
        creator = serializers.RegexField(ADDRESS_RE)
        predicted_address = serializers.RegexField(ADDRESS_RE)
        token = serializers.RegexField(ADDRESS_RE)
        budget = serializers.RegexField(r"^[1-9][0-9]{0,37}$")

    class OutputSerializer(serializers.Serializer):
        ready = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="campaigns_funding_check")
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        with node_answers():  # the token's allowance is read
            services.campaign_check_funding(
                creator=v["creator"],
                predicted_address=Web3.to_checksum_address(v["predicted_address"]),
                token_address=v["token"],
                budget=int(v["budget"]),
            )
        return Response(self.OutputSerializer({"ready": True}).data)


class CampaignMetadataApi(APIView):
    """A campaign's metadata document by its hash (what the on-chain metadataHash commits to)."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses={200: dict}, operation_id="campaigns_metadata_retrieve")
    def get(self, request: Request, metadata_hash: str) -> Response:
        document = selectors.campaign_metadata_get(metadata_hash=metadata_hash)
        if document is None:
            raise CampaignNotFound(f"no metadata with hash {metadata_hash}")
        return Response(document)
