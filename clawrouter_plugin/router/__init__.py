"""The smart router (placeholder until the router lands)."""
