"""Admin of the campaigns app: display, and actions that call services."""
