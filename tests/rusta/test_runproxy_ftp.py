"""The FTP gateway on a real `runproxy`'s proxy port: list, download and upload against a real FTP server."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from routes.services import save_route
from tests.support.ftpserver import FtpServer
from tests.support.gateway import Gateway, http, serving_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ftp() -> Iterator[FtpServer]:
    with FtpServer(anonymous=True) as server:
        (server.root / "hello.txt").write_bytes(b"hello, ftp\n")
        yield server


@pytest.fixture
def gateway(tmp_path, ftp: FtpServer) -> Iterator[Gateway]:
    save_route({"name": "files", "external_path": "/files", "protocol": "ftp", "methods": ["GET", "PUT"],
                "backends": [{"host": "ftp://127.0.0.1", "port": ftp.port}]}, actor=None, source="test")
    with serving_gateway(tmp_path) as running:
        yield running


def test_a_directory_is_listed_through_the_proxy_port(gateway: Gateway):
    status, _, body = http("GET", gateway.url + "/files/list?path=/")
    assert status == 200
    assert [entry["name"] for entry in json.loads(body)["entries"]] == ["hello.txt"]


def test_a_file_is_downloaded_through_the_proxy_port(gateway: Gateway):
    status, headers, body = http("GET", gateway.url + "/files/download/hello.txt")
    assert (status, body) == (200, b"hello, ftp\n")
    assert {k.lower(): v for k, v in headers.items()}["content-length"] == "11"


def test_a_file_is_uploaded_through_the_proxy_port_and_the_request_is_logged(gateway: Gateway, ftp: FtpServer):
    status, _, body = http("PUT", gateway.url + "/files/upload?path=/new.bin", body=b"\x00\x01" * 1000)
    assert status == 201 and json.loads(body) == {"path": "/new.bin", "size": 2000}
    assert (ftp.root / "new.bin").read_bytes() == b"\x00\x01" * 1000
    gateway.stop()
    (line,) = [entry for entry in gateway.access_lines() if entry["path"].startswith("/files/upload")]
    assert (line["route"], line["status"], line["bytes_in"]) == ("files", 201, 2000)
    assert line["backend"] == f"127.0.0.1:{ftp.port}"
