from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from mrmarket import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/", include("mrmarket.api.v1.urls", namespace="api-v1")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    # Development only: production serves collected static files from its reverse proxy.
    urlpatterns += staticfiles_urlpatterns()
