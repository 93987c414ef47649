"""The offline evidence verifier (`python -m attestation.offline`): check an executor's published evidence file
from a checkout with only the pinned packages. No Django, no database, no network: it imports only
`attestation.domain` and `wire` (docs/proof.md, "Checking the evidence yourself").
"""
