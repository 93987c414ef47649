"""Public views of the attestation app: attested executors, and a job's proof of execution."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attestation.proof import build_proof
from attestation.selectors import attested_executors
from mrmarket.api.permissions import PUBLIC
from mrmarket.errors import NotFound


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


class ProofSerializer(serializers.Serializer):
    proof = serializers.DictField(help_text="mrmarket.proof-of-execution/v1 (docs/api/proof-of-execution-v1.md)")
    digest = serializers.CharField()


class ProofApi(APIView):
    """The proof of execution of a job: its report chain linked to the attestation of its signing key."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC

    @extend_schema(responses=ProofSerializer, operation_id="attestation_proof")
    def get(self, request: Request, job_id: str) -> Response:
        from execution.models import ExecutionReport, MMOrder
        from wire.canonical import digest

        order = MMOrder.objects.filter(job_spec__job_id=job_id).first()
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in ExecutionReport.objects.filter(job_id=job_id)
            .order_by("sequence")
            .values("sequence", "digest", "window_start_ms", "window_end_ms", "signing_key")
        ]
        if order is None or order.job_spec is None or not rows:
            raise NotFound(f"no reports of job {job_id}")
        return Response(
            build_proof(
                job_id=job_id,
                job_spec_digest=digest(order.job_spec),
                reports=rows,
                signing_key=rows[0]["signing_key"],
            )
        )
