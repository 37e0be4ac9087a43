"""spanlake spanlake package."""
