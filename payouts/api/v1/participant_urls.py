"""Participant operations, mounted at /api/v1/participants/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from payouts.api.v1 import participants as views

app_name = "participants"
urlpatterns = [
    path("nonce", views.ParticipantNonceApi.as_view(), name="nonce"),
    path("join", views.ParticipantJoinApi.as_view(), name="join"),
    path("<int:pk>/accounts", views.ParticipantAccountEnrolApi.as_view(), name="accounts-enrol"),
    path("<int:pk>/reports", views.ParticipantReportsSubmitApi.as_view(), name="reports-submit"),
    path(
        "<int:chain_id>/<str:campaign_address>/<str:reward_address>",
        views.ParticipantStatusApi.as_view(),
        name="status",
    ),
]
