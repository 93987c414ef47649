"""Thin Celery tasks of the payouts app: ids in, one service call, retries with backoff."""
