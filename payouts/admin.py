"""Admin of the payouts app: display, and actions that call services."""
