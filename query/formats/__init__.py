"""spanlake query/formats package."""
