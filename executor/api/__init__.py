"""The executor's HTTP API v1 (docs/api/executor-v1.yaml)."""
