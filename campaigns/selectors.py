"""Reads of the campaigns app."""
