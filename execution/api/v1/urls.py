"""API v1 operations of the execution app, mounted at /api/v1/execution/ (one view per operation)."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "execution"
urlpatterns: list[URLPattern] = []
