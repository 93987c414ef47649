"""Recording oracle (scoring, anti-abuse, results bundles) and reputation oracle (payout manifests, Merkle roots,
claims, audit and recompute).
"""
