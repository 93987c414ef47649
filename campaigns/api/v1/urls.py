"""API v1 operations of the campaigns app, mounted at /api/v1/campaigns/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from campaigns.api.v1 import views

app_name = "campaigns"
urlpatterns = [
    path("", views.CampaignListApi.as_view(), name="list"),
    path("<int:chain_id>/<str:address>", views.CampaignDetailApi.as_view(), name="detail"),
]
