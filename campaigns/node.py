"""What a chain node that does not answer raises through web3.py, and the typed refusal made of it: the creator
wizard's pages and the campaigns API answer 503 `chain_unavailable`, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from web3.exceptions import Web3Exception

from campaigns.errors import ChainUnavailable
from mrmarket.config import ConfigError

# Refused or timed out (requests, aiohttp), or an answer that is no JSON-RPC reply.
NODE_FAILURES = (Web3Exception, requests.RequestException, ConnectionError, TimeoutError)


@contextmanager
def node_answers() -> Iterator[None]:
    """Inside: chain reads. A node that does not answer, or no chain configured, is `ChainUnavailable` (503)."""
    try:
        yield
    except NODE_FAILURES as exc:
        raise ChainUnavailable(f"the chain's node does not answer ({type(exc).__name__})") from None
    except ConfigError as exc:
        raise ChainUnavailable(f"no chain is configured here: {exc}") from None
