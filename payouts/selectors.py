"""Reads of the payouts app."""
