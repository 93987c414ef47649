"""API v1 operations of the attestation app, mounted at /api/v1/attestation/ (one view per operation)."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "attestation"
urlpatterns: list[URLPattern] = []
