"""Observability: metric recording, exposition, time series and charts."""
