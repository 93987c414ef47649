"""Writes of the campaigns app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""
