"""Thin Celery tasks of the campaigns app: ids in, one service call, retries with backoff."""
