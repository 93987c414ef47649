"""API v1 operations of the payouts app, mounted at /api/v1/payouts/ (one view per operation)."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "payouts"
urlpatterns: list[URLPattern] = []
