"""Public views of the attestation app: attested executors. (A job's proof of execution, built from execution's
reports, is served by `execution.api.v1.proof` under the same prefix.)"""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attestation.selectors import attested_executors
from mrmarket.api.permissions import PUBLIC


class PublicExecutorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    mrtd = serializers.CharField()
    rtmrs = serializers.ListField(child=serializers.CharField())
    tcb_status = serializers.CharField()
    hardware_attested = serializers.BooleanField(
        help_text="False: verified under the dev quote authority's root, not Intel's (not hardware-attested)."
    )
    build_version = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField(), help_text="EasyEnclave tags (exchange, region, …)")
    signing_key = serializers.CharField()
    last_verified_at = serializers.DateTimeField(allow_null=True)
    checks_total = serializers.IntegerField(help_text="Scheduled re-attestations attempted.")
    checks_ok = serializers.IntegerField(help_text="…of which it answered and passed (uptime: ok / total).")
    reports_accepted = serializers.IntegerField(help_text="Reports stored after signature, chain and key checks.")
    reports_refused = serializers.IntegerField(help_text="Report pages refused (bad signature, broken chain, …).")


class ExecutorListApi(APIView):
    """Executors that passed attestation (and have not been revoked), with measurement and last verification."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC

    @extend_schema(responses=PublicExecutorSerializer(many=True), operation_id="attestation_executors_list")
    def get(self, request: Request) -> Response:
        return Response(PublicExecutorSerializer(attested_executors(), many=True).data)
