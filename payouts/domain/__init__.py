"""Pure domain code of the payouts app: no Django imports (tests/core/test_layout.py), tested without a database."""
