"""spanlake collector package."""
