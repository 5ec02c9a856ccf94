"""Fixtures of the dashboard's browser tests: a running gateway, a logged-in page, stored history, and how to
judge what the page shows (colour contrast as WCAG computes it)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from metrics.models import RawPoint
from metrics.queries import floor
from protocols.recorder import BUCKETS, LATENCY_BOUNDS
from tests.support.admin_browser import browser_page, fast_password_hashing, log_in, operator  # noqa: F401
from tests.support.gateway import Gateway, start_gateway

PHONE = {"width": 390, "height": 844}
# The colour of what is behind an element: the first ancestor with a background (the page's in the end).
BACKGROUND_OF = """element => {
    for (let e = element; e; e = e.parentElement) {
        const colour = getComputedStyle(e).backgroundColor;
        if (colour !== 'rgba(0, 0, 0, 0)' && colour !== 'transparent') return colour;
    }
    return 'rgb(255, 255, 255)';
}"""


@pytest.fixture
def gateway(tmp_path) -> Iterator[Gateway]:
    running = start_gateway(tmp_path)
    try:
        yield running
    finally:
        assert running.stop() == 0


@pytest.fixture
def page(gateway, browser_page):  # noqa: F811
    """The browser, logged in to the gateway's admin (request fixtures that store rows before this one:
    Playwright's sync API runs an event loop in the test's thread, where Django then refuses queries)."""
    log_in(browser_page, gateway.admin_url)
    return browser_page


def open_dashboard(page, gateway: Gateway, path: str = "") -> None:
    """Load a dashboard page and wait until every chart has been drawn from the history."""
    page.goto(f"{gateway.admin_url}/admin/metrics/dashboard/{path}")
    page.wait_for_selector("#metrics-dashboard[data-loaded]")


def store_points(seconds_ago: list[int], *, route: str = "echo", count: int = 10, bytes_out: int = 0) -> list[datetime]:
    """10-second points of `route` that many seconds ago, as a gateway's flush writes them; their starts."""
    now = timezone.now()
    starts = []
    for ago in seconds_ago:
        start = floor(now - timedelta(seconds=ago), 10)
        buckets = [0] * BUCKETS
        buckets[LATENCY_BOUNDS.index(0.005)] = count
        RawPoint.objects.create(start=start, route=route, backend="127.0.0.1:9", source="test", count=count,
                                duration_sum=0.004 * count, duration_min=0.003, duration_max=0.005,
                                bytes_in=bytes_out // 10, bytes_out=bytes_out, buckets=buckets)
        starts.append(start)
    return starts


def rgb(colour: str, behind: tuple[float, float, float] = (255, 255, 255)) -> tuple[float, float, float]:
    """A CSS colour (#rgb, #rrggbb, rgb(), rgba()) as red, green, blue; a translucent one over `behind`."""
    colour = colour.strip()
    if colour.startswith("#"):
        digits = colour[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)]
    red, green, blue = numbers[:3]
    alpha = numbers[3] if len(numbers) > 3 else 1.0
    return (red * alpha + behind[0] * (1 - alpha), green * alpha + behind[1] * (1 - alpha),
            blue * alpha + behind[2] * (1 - alpha))


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of a colour drawn on a background (1 to 21; body text wants at least 4.5)."""

    def luminance(channels: tuple[float, float, float]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    back = rgb(background)
    lighter, darker = sorted([luminance(rgb(foreground, back)), luminance(back)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
