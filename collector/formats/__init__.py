"""spanlake collector/formats package."""
