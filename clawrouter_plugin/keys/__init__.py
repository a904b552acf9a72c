"""API keys for a shared proxy (team mode): who is calling, and what each caller may spend."""
