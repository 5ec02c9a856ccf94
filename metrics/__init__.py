"""Observability: metric recording, exposition, time series, charts, and the active backend health checks."""
