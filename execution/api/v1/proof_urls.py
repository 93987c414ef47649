"""The proof of execution's operation, mounted at /api/v1/attestation/ beside the attestation app's own (its
public address predates the view's move to execution, which holds the reports it is built from)."""

from __future__ import annotations

from django.urls import path

from execution.api.v1 import proof

app_name = "proof"
urlpatterns = [
    path("proofs/<str:job_id>", proof.ProofApi.as_view(), name="proof"),
]
