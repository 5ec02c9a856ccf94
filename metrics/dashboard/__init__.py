"""The metrics dashboard in the admin: overview, performance, errors, traffic, circuit breakers, and per route."""
