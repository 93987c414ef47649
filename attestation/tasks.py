"""Thin Celery tasks of the attestation app: ids in, one service call, retries with backoff."""
