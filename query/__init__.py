"""spanlake query package."""
