"""Local stand-ins for the outside world (chain, exchange, TEE, EasyEnclave) and the demo launcher."""
