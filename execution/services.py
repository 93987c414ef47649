"""Writes of the execution app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""
