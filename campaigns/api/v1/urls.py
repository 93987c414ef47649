"""API v1 operations of the campaigns app, mounted at /api/v1/campaigns/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from campaigns.api.v1 import views

app_name = "campaigns"
urlpatterns = [
    path("", views.CampaignListApi.as_view(), name="list"),
    path("prepare", views.CampaignPrepareApi.as_view(), name="prepare"),
    path("funding-check", views.CampaignFundingCheckApi.as_view(), name="funding-check"),
    path("metadata/<str:metadata_hash>", views.CampaignMetadataApi.as_view(), name="metadata"),
    path("<int:chain_id>/<str:address>", views.CampaignDetailApi.as_view(), name="detail"),
]
