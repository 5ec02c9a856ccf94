"""The management API of the traffic history (mounted under /api/ with the rest, staff only)."""
