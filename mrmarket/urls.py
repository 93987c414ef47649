from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from attestation.views import executors_page
from campaigns.views import landing
from mrmarket import siwe_views, views
from payouts.views import campaign_audit_page, campaign_public_page, my_page

urlpatterns = [
    path("", landing, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/", include("mrmarket.api.v1.urls", namespace="api-v1")),
    path("admin/", admin.site.urls),
    path("executors/", executors_page, name="executors"),
    path("auth/siwe/message", siwe_views.siwe_message, name="siwe-message"),
    path("auth/siwe/sign-in", siwe_views.siwe_sign_in, name="siwe-sign-in"),
    path("auth/siwe/sign-out", siwe_views.siwe_sign_out, name="siwe-sign-out"),
    path("me/", my_page, name="me"),
    path("campaigns/<int:chain_id>/<str:address>/", campaign_public_page, name="campaign-page"),
    path("campaigns/<int:chain_id>/<str:address>/audit", campaign_audit_page, name="campaign-audit"),
]
