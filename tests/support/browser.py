"""Debian's chromium for the browser tests (driven by Playwright): where it is and how it is started here."""
from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium")
# Headless, and quiet on this machine's closed network (no background or component-update connections).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Debian's chromium is not installed (apt-get install chromium)")
