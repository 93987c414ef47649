"""The pure exchange engine: no I/O, no clock of its own, no randomness."""
