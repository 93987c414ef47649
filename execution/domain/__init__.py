"""Pure domain code of the execution app: no Django imports, tested without a database (STYLE.md)."""
