"""Writes of the payouts app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the outside."""
