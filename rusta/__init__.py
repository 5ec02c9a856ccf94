"""Rusta: an API gateway on Django. This package holds the wiring only."""

__version__ = "0.1.0"  # keep in step with pyproject.toml; /metrics reports it as rusta_build_info{version}
