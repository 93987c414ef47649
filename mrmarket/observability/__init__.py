"""Structured logs, correlation ids and metrics, shared by web, worker and beat."""
