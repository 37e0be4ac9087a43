"""spanlake ui package."""
