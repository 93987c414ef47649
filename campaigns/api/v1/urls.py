"""API v1 operations of the campaigns app, mounted at /api/v1/campaigns/ (one view per operation)."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "campaigns"
urlpatterns: list[URLPattern] = []
