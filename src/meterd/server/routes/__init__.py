"""Routes of the native API (/v1) and operations endpoints."""
