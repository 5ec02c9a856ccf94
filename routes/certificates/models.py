"""Certificates as stored: the PEM chain, its private key (never shown), the names it serves, and what was read
from it at save.

Declared here and imported by routes.models, so Django files it under the routes app (routes_certificate) and the
role groups cover it. routes.certificates.services writes it; routes.snapshot hands it to the data plane.
"""
from __future__ import annotations

from datetime import datetime

from django.db import models


class Certificate(models.Model):
    """A certificate the proxy listener serves (by SNI) to clients asking for one of its `hosts`; the `default`
    one to those asking for no other. `key` is write-only: no read, export or audit row ever shows it."""

    name = models.CharField(max_length=100, unique=True)
    hosts = models.JSONField(
        default=list, blank=True,
        help_text='Lower-case DNS names, `*.example.com` for one label, like ["api.example.com"]; left empty, the '
                  "certificate's own subjectAltName DNS names.")
    certificate = models.TextField(help_text="The PEM chain: the leaf first, then its intermediates.")
    key = models.TextField(help_text="The leaf's private key in PEM, unencrypted; write-only.")
    default = models.BooleanField(
        default=False, help_text="Served when the client's name (SNI) matches no certificate's hosts, or it sends "
                                 "none; one certificate at most.")
    subject = models.CharField(max_length=1000, blank=True, default="", help_text="The leaf's subject (RFC 4514).")
    issuer = models.CharField(max_length=1000, blank=True, default="", help_text="The leaf's issuer (RFC 4514).")
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True, db_index=True, help_text="When the leaf expires.")
    fingerprint_sha256 = models.CharField(max_length=64, blank=True, default="",
                                          help_text="SHA-256 of the leaf (DER), hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["default"], condition=models.Q(default=True), name="certificate_one_default",
                violation_error_message="Another certificate is already the default; one certificate at most.",
            ),
        ]

    def expires_in_days(self, now: datetime) -> int | None:
        """Whole days until the leaf expires (negative once it has); None before it was read."""
        if self.not_after is None:
            return None
        return (self.not_after - now).days

    def __str__(self) -> str:
        return self.name
