"""Mr.Market Django project: settings, URLs, ASGI, the Celery app and cross-cutting helpers."""

from mrmarket.celery_app import app as celery_app

__all__ = ["celery_app"]
