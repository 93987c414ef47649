"""API v1 router: cross-cutting operations here, each app's operations under its own prefix."""

from __future__ import annotations

from django.urls import include, path

from mrmarket.api.v1 import views

app_name = "api-v1"

urlpatterns = [
    path("schema", views.SchemaApi.as_view(api_version="v1"), name="schema"),
    path("me", views.MeApi.as_view(), name="me"),
    path("auth/token", views.TokenObtainApi.as_view(), name="auth-token"),
    path("system/status", views.SystemStatusApi.as_view(), name="system-status"),
    path("system/status/refresh", views.SystemStatusRefreshApi.as_view(), name="system-status-refresh"),
    path("campaigns/", include("campaigns.api.v1.urls")),
    path("execution/", include("execution.api.v1.urls")),
    path("attestation/", include("attestation.api.v1.urls")),
    path(
        "attestation/", include("execution.api.v1.proof_urls")
    ),  # the proof of execution, built from execution's reports
    path("payouts/", include("payouts.api.v1.urls")),
    path("participants/", include("payouts.api.v1.participant_urls")),
]
