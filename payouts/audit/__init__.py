"""The audit command line (`python -m payouts.audit`): recompute an epoch's results bundle from its published inputs
document, from a checkout with only the pinned packages. No Django, no database, no settings: it imports only
`payouts.domain` and `wire` (docs/scoring.md, Artifacts).
"""
