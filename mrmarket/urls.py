from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from attestation.views import executor_evidence, executors_page
from campaigns import wizard_views
from campaigns.views import landing
from mrmarket import siwe_views, views
from payouts import proof_views
from payouts.stability_views import campaign_stability_csv, campaign_stability_json, campaign_stability_page
from payouts.views import campaign_audit_page, campaign_public_page, my_page

urlpatterns = [
    path("", landing, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/", include("mrmarket.api.v1.urls", namespace="api-v1")),
    path("admin/", admin.site.urls),
    path("executors/", executors_page, name="executors"),
    path("proof/", proof_views.proof, name="proof"),
    path("proof/campaigns/<int:chain_id>/<str:address>", proof_views.campaign_proof, name="campaign-proof"),
    path("proof/executors/<int:executor_id>/evidence.json", executor_evidence, name="executor-evidence"),
    path("auth/siwe/message", siwe_views.siwe_message, name="siwe-message"),
    path("auth/siwe/sign-in", siwe_views.siwe_sign_in, name="siwe-sign-in"),
    path("auth/siwe/sign-out", siwe_views.siwe_sign_out, name="siwe-sign-out"),
    path("me/", my_page, name="me"),
    path("campaigns/<int:chain_id>/<str:address>/", campaign_public_page, name="campaign-page"),
    path("campaigns/new", wizard_views.wizard_start, name="campaign-wizard"),
    path("campaigns/new/review", wizard_views.wizard_review, name="campaign-wizard-review"),
    path("campaigns/new/status", wizard_views.wizard_status, name="campaign-wizard-status"),
    path("campaigns/new/restart", wizard_views.wizard_restart, name="campaign-wizard-restart"),
    path("campaigns/new/<str:step>", wizard_views.wizard_step, name="campaign-wizard-step"),
    path("campaigns/new/<str:step>/check", wizard_views.wizard_check, name="campaign-wizard-check"),
    path("campaigns/<int:chain_id>/<str:address>/audit", campaign_audit_page, name="campaign-audit"),
    path("campaigns/<int:chain_id>/<str:address>/stability", campaign_stability_page, name="campaign-stability"),
    path("campaigns/<int:chain_id>/<str:address>/stability.csv", campaign_stability_csv, name="campaign-stability-csv"),
    path(
        "campaigns/<int:chain_id>/<str:address>/stability.json", campaign_stability_json, name="campaign-stability-json"
    ),
]

# Under /api/, a path no pattern matches answers in the API's error shape (mrmarket/views.py).
handler404 = "mrmarket.views.not_found"
