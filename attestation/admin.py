"""Admin of the attestation app: display, and actions that call services."""
