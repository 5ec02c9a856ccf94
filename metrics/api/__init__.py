"""The management API of backend health (mounted under /api/ with the rest, staff only)."""
