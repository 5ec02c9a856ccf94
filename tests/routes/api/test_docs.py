"""/api/docs/ (Swagger UI) and /api/docs/redoc/ (Redoc): the API reference for staff, from the admin listener alone."""
from __future__ import annotations

import asyncio
import mimetypes
import os
from html.parser import HTMLParser

import pytest
from asgiref.sync import async_to_sync
from django.contrib.staticfiles import finders
from django.test import Client

from rusta.asgi import build_admin_application

pytestmark = pytest.mark.django_db
PAGES = ("/api/docs/", "/api/docs/redoc/")
STATIC_PREFIX = "/static/"


class AssetLinks(HTMLParser):
    """The URLs a browser fetches while loading the page: scripts, style sheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag in ("script", "img") else found.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def asset_urls(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


def page_as(user, url: str) -> str:
    """The page as a browser logged into the admin with `user` gets it (the session, not a token)."""
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def served_by_admin_listener(url: str) -> tuple[int, str, int]:
    """(status, content type, body length) of a GET to the admin listener's ASGI application, which `make run`
    and `runproxy` serve on port 8001."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    requests = [{"type": "http.request", "body": b""}]

    async def receive() -> dict:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected until the response is sent
        raise AssertionError("unreachable")

    scope = {"type": "http", "method": "GET", "path": url, "raw_path": url.encode(), "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8001")]}
    async_to_sync(build_admin_application())(scope, receive, send)
    start = sent[0]
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    body = sum(len(message.get("body", b"")) for message in sent[1:])
    return start["status"], headers.get("content-type", ""), body


def test_the_swagger_ui_page_loads_the_schema_from_api_schema(staff_user):
    html = page_as(staff_user, "/api/docs/")
    assert '<div id="swagger-ui"></div>' in html
    assert 'url: "/api/schema/",' in html


def test_the_redoc_page_loads_the_schema_from_api_schema(staff_user):
    html = page_as(staff_user, "/api/docs/redoc/")
    assert '<redoc spec-url="/api/schema/">' in html
    assert "<title>Rusta management API</title>" in html


@pytest.mark.parametrize("url", PAGES)
def test_a_viewer_may_read_the_reference(viewer, url):
    page_as(viewer, url)


@pytest.mark.parametrize("url", PAGES)
def test_a_browser_without_a_session_is_refused_like_the_rest_of_the_api(url):
    response = Client().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"  # not Basic: no password dialog pops up
    assert b"swagger-ui" not in response.content and b"redoc" not in response.content


@pytest.mark.parametrize("url", PAGES)
def test_a_logged_in_user_who_is_not_staff_is_refused(plain_user, url):
    client = Client()
    client.force_login(plain_user)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_the_page_names_no_other_host(staff_user, url):
    html = page_as(staff_user, url)
    # Not even a preconnect hint: the page names no host at all, only paths on the admin listener.
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize("url", PAGES)
def test_every_asset_the_page_loads_is_one_of_our_static_files(staff_user, url):
    urls = asset_urls(page_as(staff_user, url))
    assert any(asset.endswith(".js") for asset in urls), urls
    for asset in urls:
        assert asset.startswith(STATIC_PREFIX + "drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix(STATIC_PREFIX)), f"{asset} is not in any installed app"


@pytest.mark.parametrize("url", PAGES)
def test_the_admin_listener_serves_every_asset_the_page_loads(staff_user, url):
    for asset in asset_urls(page_as(staff_user, url)):
        status, content_type, length = served_by_admin_listener(asset)
        assert status == 200, asset
        # A script served under another type would be refused by a browser told not to sniff.
        assert content_type.split(";")[0] == mimetypes.guess_type(asset)[0], (asset, content_type)
        assert length == os.path.getsize(finders.find(asset.removeprefix(STATIC_PREFIX))), asset  # whole


def test_the_reference_pages_stay_out_of_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert not any(path.startswith("/api/docs") for path in schema["paths"])
