"""API docs learned from traffic: a route's `api_docs` block and the sampler that records the shapes (never the
values) of sampled requests and responses."""
