"""Consumers: who calls the gateway's routes, known by API keys and JWT subjects (models, services, admin)."""
