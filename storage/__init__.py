"""spanlake storage package."""
