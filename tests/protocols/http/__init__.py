"""Tests of the HTTP data plane."""
