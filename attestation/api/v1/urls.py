"""API v1 operations of the attestation app, mounted at /api/v1/attestation/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from attestation.api.v1 import views

app_name = "attestation"
urlpatterns = [
    path("executors/", views.ExecutorListApi.as_view(), name="executor-list"),
    path("allowlist", views.AllowlistApi.as_view(), name="allowlist"),
]
