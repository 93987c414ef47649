"""Reads of the execution app."""
