"""Writes of the attestation app: `<entity>_<action>(*, ...)`, typed, atomic, idempotent where they touch the
outside.
"""
