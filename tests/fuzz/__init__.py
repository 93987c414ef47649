"""See docs/reliability.md."""
