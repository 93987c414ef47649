"""Thin Celery tasks of the execution app: ids in, one service call, retries with backoff."""
