"""Pure domain code of the campaigns app: no Django imports (tests/core/test_layout.py), tested without a database."""
