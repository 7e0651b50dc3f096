"""Users and tokens tables (filled in by the auth work)."""
