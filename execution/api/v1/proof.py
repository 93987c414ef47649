"""A job's proof of execution (API v1, public): its report chain, from execution's tables, linked to the
attestation of its signing key (`attestation.proof`). Mounted at /api/v1/attestation/proofs/ (`proof_urls`),
where it has always been published."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attestation.proof import build_proof
from execution.selectors import job_proof_inputs
from mrmarket.api.permissions import PUBLIC
from mrmarket.errors import NotFound


class ProofSerializer(serializers.Serializer):
    proof = serializers.DictField(help_text="mrmarket.proof-of-execution/v1 (docs/api/proof-of-execution-v1.md)")
    digest = serializers.CharField()


class ProofApi(APIView):
    """The proof of execution of a job: its report chain linked to the attestation of its signing key."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC

    @extend_schema(responses=ProofSerializer, operation_id="attestation_proof")
    def get(self, request: Request, job_id: str) -> Response:
        inputs = job_proof_inputs(job_id=job_id)
        if inputs is None:
            raise NotFound(f"no reports of job {job_id}")
        return Response(
            build_proof(
                job_id=job_id,
                job_spec_digest=inputs.job_spec_digest,
                reports=inputs.reports,
                signing_key=inputs.reports[0]["signing_key"],
            )
        )
