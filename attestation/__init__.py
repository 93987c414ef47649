"""Evidence verification (TDX quotes, Intel Trust Authority tokens), measurement allowlist, EasyEnclave client,
executor registry and selection, sealed secret provisioning, revocation.
"""
