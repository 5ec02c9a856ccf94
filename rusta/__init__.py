"""Rusta: an API gateway on Django. This package holds the wiring only."""
