"""A stand-in for EasyEnclave's control plane (design 1, Jan–Feb 2026): registration, discovery, health, and
the control plane's own nonce-bound attestation — see docs/easyenclave.md."""
