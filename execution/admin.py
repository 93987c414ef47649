"""Admin of the execution app: display, and actions that call services."""
