"""Pure domain code of the payouts app: no Django imports, tested without a database (STYLE.md)."""
