"""TLS certificates of the proxy listener as configuration: the model, its services, API and admin."""
