"""API v1 operations of the payouts app, mounted at /api/v1/payouts/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from payouts.api.v1 import views

app_name = "payouts"
urlpatterns = [
    path("reports/<str:digest>.json", views.ReportApi.as_view(), name="report"),
    path("<int:chain_id>/<str:address>/epochs", views.EpochCloseListApi.as_view(), name="epochs"),
    path("<int:chain_id>/<str:address>/<int:epoch>/inputs.json", views.EpochInputsApi.as_view(), name="inputs"),
    path("<int:chain_id>/<str:address>/<int:epoch>/bundle.json", views.EpochBundleApi.as_view(), name="bundle"),
    path("<int:chain_id>/<str:address>/<int:epoch>/manifest.json", views.EpochManifestApi.as_view(), name="manifest"),
    path("<int:chain_id>/<str:address>/<int:epoch>/proof/<str:account>", views.LeafProofApi.as_view(), name="proof"),
]
