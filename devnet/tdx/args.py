"""Command-line argument types shared by the devnet's TDX tools (`devnet.tdx`, `devnet.easyenclave`)."""

from __future__ import annotations

import argparse


def hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected hex") from None


def measurement(text: str) -> bytes:
    """An MRTD or RTMR: exactly 48 bytes of hex."""
    value = hex_bytes(text)
    if len(value) != 48:
        raise argparse.ArgumentTypeError(f"expected 48 bytes (96 hex characters), got {len(value)} bytes")
    return value


def report_data(text: str) -> bytes:
    """REPORTDATA: at most 64 bytes of hex (zero-padded by the quote)."""
    value = hex_bytes(text)
    if len(value) > 64:
        raise argparse.ArgumentTypeError(f"at most 64 bytes, got {len(value)}")
    return value
