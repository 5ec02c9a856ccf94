"""Consumers as stored: the consumer, the JWT subjects that are it, and its API keys (digests only, never keys).

Declared here and imported by routes.models, so Django files them under the routes app (routes_consumer,
routes_consumersubject, routes_apikey) and the role groups cover them. routes.consumers.services writes them.
"""
from __future__ import annotations

from datetime import datetime

from django.db import models

API_KEY_DISPLAY_CHARS = 11  # "rk_" and the key's first 8 characters: enough to tell keys apart, useless to guess


class Consumer(models.Model):
    """Someone who calls the gateway: an application, a partner or a team. Its API keys and JWT subjects resolve
    to it, its name goes upstream as `X-Consumer-Name`, and rate limits with the `consumer` scope count it."""

    name = models.CharField(max_length=100, unique=True,
                            help_text="Unique; letters, digits and '_.@:-' (sent upstream as X-Consumer-Name).")
    enabled = models.BooleanField(default=True, help_text="A disabled consumer's keys and tokens get 403.")
    tags = models.JSONField(default=list, blank=True, help_text="Labels to find consumers by, like [\"partner\"].")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ConsumerSubject(models.Model):
    """A JWT `sub` value that is this consumer: a token with it counts as the consumer's, whichever route's JWT
    settings verified it. A subject belongs to one consumer at most."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="subjects")
    subject = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["consumer_id", "id"]

    def __str__(self) -> str:
        return self.subject


class ApiKey(models.Model):
    """One API key of a consumer. The key is shown once, when issued; only its SHA-256 (`digest`) and its first
    characters (`prefix`) are kept. It works until `revoked_at`, or until `expires_at` (a rotated key's overlap,
    or a key issued with a lifetime)."""

    consumer = models.ForeignKey(Consumer, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to tell keys apart.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until revoked.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["consumer_id", "-created_at", "-id"]
        verbose_name = "API key"

    def state(self, now: datetime) -> str:
        """active, expiring (works until `expires_at`), expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is None:
            return "active"
        return "expiring" if self.expires_at > now else "expired"

    def __str__(self) -> str:
        return f"{self.prefix}…"
