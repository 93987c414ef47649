"""A dev TDX quote authority (real DCAP v4 quotes under a local test root) and an EasyEnclave-runtime stand-in."""
