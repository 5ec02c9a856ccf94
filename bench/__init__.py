"""Rusta's benchmark harness: `make bench` (bench/run.sh) and the route-matching micro-benchmark."""
