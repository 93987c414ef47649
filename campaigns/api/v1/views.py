"""Public campaign discovery and detail (API v1)."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors
from campaigns.errors import CampaignNotFound
from mrmarket.api.permissions import PUBLIC


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
    funded = serializers.BooleanField()
    paid_out = serializers.CharField()
    refunded = serializers.CharField()
    status = serializers.SerializerMethodField()

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

    @extend_schema(
        parameters=[
            OpenApiParameter("chain_id", int),
            OpenApiParameter("status", str, enum=[s.value for s in selectors.CampaignStatus]),
            OpenApiParameter("token", str),
        ],
        responses=CampaignSerializer(many=True),
        operation_id="campaigns_list",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        status = selectors.CampaignStatus(data["status"]) if "status" in data else None
        campaigns = selectors.campaign_list(chain_id=data.get("chain_id"), status=status, token=data.get("token"))
        return Response(CampaignSerializer(campaigns, many=True).data)


class CampaignDetailApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses=CampaignSerializer, operation_id="campaigns_retrieve")
    def get(self, request: Request, chain_id: int, address: str) -> Response:
        campaign = selectors.campaign_get(chain_id=chain_id, address=address)
        if campaign is None:
            raise CampaignNotFound(f"no campaign {address} on chain {chain_id}")
        return Response(CampaignSerializer(campaign).data)
