"""Public views of the attestation app: attested executors. (A job's proof of execution, built from execution's
reports, is served by `execution.api.v1.proof` under the same prefix.)"""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attestation.models import AllowlistAudit, MeasurementEntry
from attestation.selectors import allowlist_published, attested_executors
from mrmarket.api.permissions import PUBLIC
from wire.measurement import expected_rtmr3


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


class PublishedMeasurementSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    mrtd = serializers.CharField()
    rtmrs = serializers.SerializerMethodField(help_text="RTMR0–3; an empty string is a register not pinned.")
    build_version = serializers.CharField()
    source_commit = serializers.CharField()
    image_digest = serializers.CharField(
        help_text="The executor image's manifest digest the entry was made for; empty when not recorded."
    )
    expected_rtmr3 = serializers.SerializerMethodField(
        help_text="RTMR3 a TD must show once its runtime started that image (docs/executor-image.md), or null."
    )
    note = serializers.CharField()
    added_at = serializers.DateTimeField()
    removed_at = serializers.DateTimeField(allow_null=True)
    active = serializers.SerializerMethodField()

    def get_rtmrs(self, entry: MeasurementEntry) -> list[str]:
        return [entry.rtmr0, entry.rtmr1, entry.rtmr2, entry.rtmr3]

    def get_expected_rtmr3(self, entry: MeasurementEntry) -> str | None:
        return expected_rtmr3(entry.image_digest) if entry.image_digest else None

    def get_active(self, entry: MeasurementEntry) -> bool:
        return entry.removed_at is None


class AllowlistChangeSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    action = serializers.CharField(help_text="added or removed")
    at = serializers.DateTimeField()


class AllowlistApi(APIView):
    """The measurement allowlist, public: every build ever approved (what an executor's TD must measure to be
    trusted), active or removed, and the history of changes. Who changed it is not published."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC

    class OutputSerializer(serializers.Serializer):
        schema = serializers.CharField()
        entries = PublishedMeasurementSerializer(many=True)
        history = AllowlistChangeSerializer(many=True)

    @extend_schema(responses=OutputSerializer, operation_id="attestation_allowlist")
    def get(self, request: Request) -> Response:
        entries, audit = allowlist_published()
        body = {"schema": ALLOWLIST_SCHEMA, "entries": entries, "history": [_change(a) for a in audit]}
        return Response(self.OutputSerializer(body).data)


ALLOWLIST_SCHEMA = "mrmarket.measurement-allowlist/v1"


def _change(audit: AllowlistAudit) -> dict[str, object]:
    return {"entry_id": audit.entry_id, "action": audit.action, "at": audit.at}
