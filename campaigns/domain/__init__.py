"""Pure domain code of the campaigns app: no Django imports, tested without a database (STYLE.md)."""
