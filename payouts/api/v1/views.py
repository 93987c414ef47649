"""Public API v1 of the recording oracle's results: each epoch's close, and the documents anyone can recompute.

The inputs and the bundle are served as their stored bytes (canonical JSON), so their SHA-256 is the digest the
close lists and, for the bundle, the one recorded on chain. Each is immutable once stored: the responses say so.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mrmarket.api.permissions import PUBLIC
from payouts import selectors
from payouts.errors import ArtifactNotFound, InvalidAddress, PayoutNotFound

IMMUTABLE = "public, max-age=31536000, immutable"
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class EpochCloseSerializer(serializers.Serializer):
    epoch = serializers.IntegerField()
    state = serializers.CharField(help_text="collecting, closing, stored, recorded or failed")
    epoch_start = serializers.DateTimeField()
    epoch_end = serializers.DateTimeField()
    participants = serializers.IntegerField()
    inputs_digest = serializers.CharField(help_text="SHA-256 of the stored inputs document (lower-case hex).")
    bundle_digest = serializers.CharField(help_text="SHA-256 of the stored bundle: the digest recorded on chain.")
    manifest_digest = serializers.CharField(help_text="SHA-256 of the stored payout manifest built from the bundle.")
    inputs_url = serializers.SerializerMethodField()
    bundle_url = serializers.SerializerMethodField()
    manifest_url = serializers.SerializerMethodField()
    tx_hash = serializers.CharField(help_text="The recordResults transaction, once mined.")
    block_number = serializers.IntegerField(allow_null=True)
    failure_reason = serializers.CharField()
    notes = serializers.ListField(child=serializers.DictField(), help_text="What was left out of the inputs, and why.")

    def _url(self, close: Any, kind: str) -> str | None:
        if not getattr(close, f"{kind}_name"):
            return None
        return str(self.context["request"].build_absolute_uri(selectors.artifact_path(close, kind)))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_inputs_url(self, close: Any) -> str | None:
        return self._url(close, "inputs")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_bundle_url(self, close: Any) -> str | None:
        return self._url(close, "bundle")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_manifest_url(self, close: Any) -> str | None:
        return self._url(close, "manifest")


class EpochCloseListApi(APIView):
    """Every epoch of a campaign the oracle has opened, with its state and, once stored, its documents."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses=EpochCloseSerializer(many=True), operation_id="payouts_epochs_list")
    def get(self, request: Request, chain_id: int, address: str) -> Response:
        closes = selectors.epoch_close_list(chain_id=chain_id, address=address)
        return Response(EpochCloseSerializer(closes, many=True, context={"request": request}).data)


class _ArtifactApi(APIView):
    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []
    kind: ClassVar[str]

    def _serve(self, chain_id: int, address: str, epoch: int) -> HttpResponse:
        close = selectors.epoch_close_get(chain_id=chain_id, address=address, epoch=epoch)
        data = None if close is None else selectors.epoch_artifact(close=close, kind=self.kind)
        if close is None or data is None:
            raise ArtifactNotFound(
                f"no stored {self.kind} for epoch {epoch} of {address} on chain {chain_id}",
                extra={"state": None if close is None else close.state},
            )
        response = HttpResponse(data, content_type="application/json")
        response["Cache-Control"] = IMMUTABLE
        response["ETag"] = f'"{getattr(close, f"{self.kind}_digest")}"'
        return response


class EpochInputsApi(_ArtifactApi):
    """The epoch's inputs document (`mrmarket.oracle-inputs/v1`), byte for byte as stored."""

    kind = "inputs"

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY}, operation_id="payouts_inputs_get")
    def get(self, request: Request, chain_id: int, address: str, epoch: int) -> HttpResponse:
        return self._serve(chain_id, address, epoch)


class EpochBundleApi(_ArtifactApi):
    """The epoch's results bundle (`mrmarket.results-bundle/v1`), byte for byte as stored and hashed on chain."""

    kind = "bundle"

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY}, operation_id="payouts_bundle_get")
    def get(self, request: Request, chain_id: int, address: str, epoch: int) -> HttpResponse:
        return self._serve(chain_id, address, epoch)


class EpochManifestApi(_ArtifactApi):
    """The epoch's payout manifest (`mrmarket.payout-manifest/v1`), byte for byte as stored beside the bundle."""

    kind = "manifest"

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY}, operation_id="payouts_manifest_get")
    def get(self, request: Request, chain_id: int, address: str, epoch: int) -> HttpResponse:
        return self._serve(chain_id, address, epoch)


class ReportApi(APIView):
    """A verified executor report (signed envelope, canonical JSON) by its digest: the sources of the inputs."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY}, operation_id="payouts_report_get")
    def get(self, request: Request, digest: str) -> HttpResponse:
        envelope = selectors.report_envelope(digest=digest)
        if envelope is None:
            raise ArtifactNotFound(f"no verified report with digest {digest}")
        response = HttpResponse(envelope.encode(), content_type="application/json")
        response["Cache-Control"] = IMMUTABLE
        return response


class LeafProofSerializer(serializers.Serializer):
    chain_id = serializers.IntegerField()
    campaign = serializers.CharField()
    epoch = serializers.IntegerField()
    index = serializers.IntegerField(help_text="The leaf's index in the manifest (its position, accounts ascending).")
    account = serializers.CharField()
    amount = serializers.CharField(help_text="Token base units, a decimal string.")
    amount_display = serializers.CharField(allow_null=True, help_text="The amount in token units, for people.")
    proof = serializers.ListField(child=serializers.CharField(), help_text="Sibling hashes, leaf to root (0x hex).")
    merkle_root = serializers.CharField()
    manifest_digest = serializers.CharField()
    status = serializers.CharField(help_text="not_published, claimable, distributed or claimed")
    claim = serializers.SerializerMethodField(help_text="The escrow call that pays this leaf, from any account.")

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"to": {"type": "string"}, "data": {"type": "string"}},
            "required": ["to", "data"],
        }
    )
    def get_claim(self, leaf: Any) -> dict[str, str]:
        return {"to": leaf.claim_to, "data": leaf.claim_data}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["amount"] = str(instance.amount)
        return data


class LeafProofApi(APIView):
    """One account's leaf of an epoch's payout manifest, its Merkle proof against the published root, its status,
    and the `claim(epoch, index, account, amount, proof)` call that pays it (anyone may send it; the amount always
    goes to the account)."""

    allowed_roles: ClassVar[frozenset[str]] = PUBLIC
    authentication_classes = []

    @extend_schema(responses=LeafProofSerializer, operation_id="payouts_proof_get")
    def get(self, request: Request, chain_id: int, address: str, epoch: int, account: str) -> Response:
        if not ADDRESS.fullmatch(account):
            raise InvalidAddress(f"{account!r} is not a 0x-prefixed 20-byte hex address", extra={"account": account})
        close = selectors.epoch_close_get(chain_id=chain_id, address=address, epoch=epoch)
        leaf = None if close is None else selectors.payout_leaf_proof(close=close, account=account)
        if leaf is None:
            raise PayoutNotFound(
                f"epoch {epoch} of {address} on chain {chain_id} pays {account} nothing (or its manifest is not "
                f"stored yet)",
                extra={"state": None if close is None else close.state},
            )
        return Response(LeafProofSerializer(leaf).data)
