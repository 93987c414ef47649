"""Pure domain code of the attestation app: no Django imports, tested without a database (STYLE.md)."""
