"""The HTTP API: one error model, role-based permissions, versioned routers (v1)."""
