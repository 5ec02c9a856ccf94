"""Observability: metric recording, exposition, time series and charts (active health checks: routes.health)."""
