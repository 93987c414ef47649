"""Reads of the attestation app."""
