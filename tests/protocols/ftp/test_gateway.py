"""The FTP gateway's HTTP API against a real FTP server (pyftpdlib), served by uvicorn on loopback."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from tests.support.edge import EdgeServer
from tests.support.ftpserver import FtpServer, ftp_route
from tests.support.proxy import Reply, call

ALICE = {"ftp": {"username": "alice", "password": "secret"}}


@pytest.fixture
def ftp() -> Iterator[FtpServer]:
    with FtpServer() as server:
        (server.root / "hello.txt").write_bytes(b"hello, ftp\n")
        (server.root / "docs").mkdir()
        (server.root / "docs" / "guide.md").write_bytes(b"# guide\n")
        yield server


@pytest.fixture
def edge(ftp: FtpServer) -> Iterator[EdgeServer]:
    routes = [
        ftp_route("files", "/ftp", ftp.port, policies=ALICE),
        ftp_route("docs", "/docs", ftp.port, policies={"ftp": {**ALICE["ftp"], "root": "/docs"}}),
        ftp_route("readonly", "/ro", ftp.port, methods=("GET",), policies=ALICE),
        ftp_route("viewer", "/viewer", ftp.port, policies={"ftp": {"username": "reader", "password": "secret"}}),
        ftp_route("wrong", "/wrong", ftp.port, policies={"ftp": {"username": "alice", "password": "nope"}}),
        ftp_route("own", "/mine", ftp.port, policies={"ftp": {"passthrough_basic_auth": True}}),
    ]
    with EdgeServer(routes) as server:
        yield server


def basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def get(edge: EdgeServer, target: str, *headers: tuple[str, str]) -> Reply:
    return call(edge.port, "GET", target, headers)


# Listing

def test_list_answers_the_entries_of_a_directory(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/list?path=/")
    assert reply.status == 200
    entries = {entry["name"]: entry for entry in reply.json()["entries"]}
    assert entries["hello.txt"]["type"] == "file" and entries["hello.txt"]["size"] == 11
    assert entries["docs"]["type"] == "dir"
    assert entries["hello.txt"]["modified"].endswith("Z")


def test_list_keeps_the_earlier_gateways_files_and_count(edge: EdgeServer) -> None:
    body = get(edge, "/ftp/list?path=/").json()
    assert sorted(body["files"]) == ["docs/", "hello.txt"] and body["count"] == 2


def test_the_route_path_alone_lists_the_root(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp")
    assert reply.status == 200 and reply.json()["path"] == "/"


def test_listing_a_missing_directory_answers_404(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/list?path=/nowhere")
    assert reply.status == 404 and reply.json()["type"] == "ftp_not_found"


# Download

def test_download_streams_the_file_with_its_length_and_name(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/download?path=/docs/guide.md")
    assert reply.status == 200 and reply.body == b"# guide\n"
    assert reply.header("content-length") == ["8"]
    assert reply.header("content-type") == ["application/octet-stream"]
    assert 'filename="guide.md"' in reply.header("content-disposition")[0]


def test_download_takes_the_path_after_the_operation_too(edge: EdgeServer) -> None:
    assert get(edge, "/ftp/download/docs/guide.md").body == b"# guide\n"


def test_head_of_a_download_gives_the_length_without_the_body(edge: EdgeServer) -> None:
    reply = call(edge.port, "HEAD", "/ftp/download?path=/hello.txt")
    assert reply.status == 200 and reply.header("content-length") == ["11"] and reply.body == b""


def test_downloading_a_missing_file_answers_404(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/download?path=/missing.bin")
    assert reply.status == 404 and reply.json()["type"] == "ftp_not_found"


def test_the_earlier_gateways_download_shape_answers_base64_json(edge: EdgeServer) -> None:
    body = get(edge, "/ftp/download?path=/hello.txt&format=json").json()
    assert body == {"file_path": "/hello.txt", "content": base64.b64encode(b"hello, ftp\n").decode(), "size": 11}


# Upload

def test_upload_stores_the_request_body(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "PUT", "/ftp/upload?path=/docs/new.bin", body=b"\x00\x01" * 50_000)
    assert reply.status == 201 and reply.json() == {"path": "/docs/new.bin", "size": 100_000}
    assert (ftp.root / "docs" / "new.bin").read_bytes() == b"\x00\x01" * 50_000


def test_upload_by_post_works_too(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "POST", "/ftp/upload?path=/posted.txt", body=b"posted")
    assert reply.status == 201 and (ftp.root / "posted.txt").read_bytes() == b"posted"


def test_the_earlier_gateways_json_upload_shape_is_accepted(edge: EdgeServer, ftp: FtpServer) -> None:
    document = {"username": "ignored", "password": "ignored", "file_path": "/legacy.txt",
                "content": base64.b64encode(b"from the old client").decode()}
    reply = call(edge.port, "POST", "/ftp/upload", [("Content-Type", "application/json")],
                 json.dumps(document).encode())
    assert reply.status == 200 and reply.json() == {"success": True, "message": "File uploaded successfully"}
    assert (ftp.root / "legacy.txt").read_bytes() == b"from the old client"


def test_uploading_into_a_missing_directory_answers_409(edge: EdgeServer) -> None:
    reply = call(edge.port, "PUT", "/ftp/upload?path=/no/such/dir/f.txt", body=b"x")
    assert reply.status == 409 and reply.json()["type"] == "ftp_conflict"


def test_an_account_without_write_rights_cannot_upload(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "PUT", "/viewer/upload?path=/nope.txt", body=b"x")
    assert reply.status == 409
    assert not (ftp.root / "nope.txt").exists()


# Delete, mkdir, rename

def test_delete_removes_a_file(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "DELETE", "/ftp/delete?path=/hello.txt")
    assert reply.status == 200 and reply.json() == {"path": "/hello.txt", "deleted": True}
    assert not (ftp.root / "hello.txt").exists()


def test_delete_removes_an_empty_directory(edge: EdgeServer, ftp: FtpServer) -> None:
    (ftp.root / "empty").mkdir()
    assert call(edge.port, "DELETE", "/ftp/delete?path=/empty").status == 200
    assert not (ftp.root / "empty").exists()


def test_deleting_a_missing_file_answers_404(edge: EdgeServer) -> None:
    assert call(edge.port, "DELETE", "/ftp/delete?path=/ghost.txt").status == 404


def test_mkdir_creates_a_directory(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "POST", "/ftp/mkdir?path=/docs/new")
    assert reply.status == 201 and reply.json() == {"path": "/docs/new", "created": True}
    assert (ftp.root / "docs" / "new").is_dir()


def test_mkdir_of_an_existing_directory_answers_409(edge: EdgeServer) -> None:
    assert call(edge.port, "POST", "/ftp/mkdir?path=/docs").status == 409


def test_rename_moves_a_file(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "POST", "/ftp/rename?from=/hello.txt&to=/docs/hello.txt")
    assert reply.status == 200 and reply.json() == {"from": "/hello.txt", "to": "/docs/hello.txt", "renamed": True}
    assert (ftp.root / "docs" / "hello.txt").read_bytes() == b"hello, ftp\n"


def test_renaming_a_missing_file_answers_404(edge: EdgeServer) -> None:
    assert call(edge.port, "POST", "/ftp/rename?from=/ghost&to=/other").status == 404


# Roots and confinement

def test_a_routes_root_is_the_clients_slash(edge: EdgeServer) -> None:
    assert get(edge, "/docs/download?path=/guide.md").body == b"# guide\n"
    assert [e["name"] for e in get(edge, "/docs/list").json()["entries"]] == ["guide.md"]


@pytest.mark.parametrize("path", ["/../hello.txt", "..", "docs/../../hello.txt", "/%2e%2e/hello.txt"])
def test_paths_that_climb_out_of_the_root_answer_400(edge: EdgeServer, path: str) -> None:
    reply = get(edge, f"/docs/download?path={path}")
    assert reply.status == 400 and reply.json()["type"] == "ftp_bad_request"


def test_dot_dot_within_the_root_is_fine(edge: EdgeServer) -> None:
    assert get(edge, "/ftp/download?path=/docs/../hello.txt").status == 200


@pytest.mark.parametrize("path", ["/hello.txt%0D%0ADELE%20/docs/guide.md", "/a%0Ab", "/a%00b"])
def test_cr_lf_and_nul_in_a_path_answer_400_and_reach_no_server(edge: EdgeServer, ftp: FtpServer,
                                                                path: str) -> None:
    reply = call(edge.port, "DELETE", f"/ftp/delete?path={path}")
    assert reply.status == 400
    assert (ftp.root / "docs" / "guide.md").exists()


def test_cr_lf_in_a_rename_target_answers_400(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "POST", "/ftp/rename?from=/hello.txt&to=/x%0D%0ADELE%20/hello.txt")
    assert reply.status == 400 and (ftp.root / "hello.txt").exists()


# Methods and operations

def test_an_unknown_operation_answers_404(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/format-disk")
    assert reply.status == 404 and reply.json()["type"] == "ftp_unknown_operation"


def test_a_method_the_operation_does_not_take_answers_405(edge: EdgeServer) -> None:
    reply = get(edge, "/ftp/delete?path=/hello.txt")
    assert reply.status == 405 and reply.header("allow") == ["DELETE, POST"]


def test_a_route_without_write_methods_is_read_only(edge: EdgeServer, ftp: FtpServer) -> None:
    assert get(edge, "/ro/download?path=/hello.txt").status == 200
    assert call(edge.port, "DELETE", "/ro/delete?path=/hello.txt").status == 405
    assert (ftp.root / "hello.txt").exists()


# Credentials

def test_the_routes_own_credentials_failing_answer_502_naming_the_login(edge: EdgeServer) -> None:
    reply = get(edge, "/wrong/list")
    assert reply.status == 502 and reply.json()["type"] == "ftp_login_failed"
    assert "FTP login failed" in reply.json()["error"] and "nope" not in reply.json()["error"]


def test_passthrough_logs_in_with_the_clients_basic_credentials(edge: EdgeServer) -> None:
    assert get(edge, "/mine/download?path=/hello.txt", basic("alice", "secret")).body == b"hello, ftp\n"


def test_passthrough_without_credentials_answers_401_with_a_challenge(edge: EdgeServer) -> None:
    reply = get(edge, "/mine/list")
    assert reply.status == 401 and reply.header("www-authenticate")[0].startswith('Basic realm="own"')


def test_passthrough_with_wrong_credentials_answers_401(edge: EdgeServer) -> None:
    reply = get(edge, "/mine/list", basic("alice", "wrong"))
    assert reply.status == 401 and reply.json()["type"] == "ftp_auth_required"


def test_passthrough_credentials_with_cr_lf_answer_400(edge: EdgeServer) -> None:
    assert get(edge, "/mine/list", basic("alice\r\nDELE /hello.txt", "secret")).status == 400


def test_the_earlier_gateways_query_credentials_work_on_passthrough_routes(edge: EdgeServer) -> None:
    reply = get(edge, "/mine/download?username=alice&password=secret&path=/hello.txt")
    assert reply.json()["content"] == base64.b64encode(b"hello, ftp\n").decode()


def test_query_credentials_do_not_override_a_routes_own_account(edge: EdgeServer) -> None:
    reply = get(edge, "/viewer/list?username=alice&password=secret")
    assert reply.status == 200  # listed as "reader", the route's account: the query's alice is not used


# Clients that leave

def test_an_upload_abandoned_by_the_client_leaves_no_partial_file(edge: EdgeServer, ftp: FtpServer) -> None:
    import socket
    import time

    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(b"PUT /ftp/upload?path=/partial.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
        sock.sendall(b"p" * (1 << 20))
        deadline = time.monotonic() + 5
        while not (ftp.root / "partial.bin").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (ftp.root / "partial.bin").exists()  # the transfer had started
    deadline = time.monotonic() + 5
    while (ftp.root / "partial.bin").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (ftp.root / "partial.bin").exists()


def test_a_download_abandoned_by_the_client_stops_the_ftp_transfer(
        edge: EdgeServer, ftp: FtpServer, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import socket
    import time

    from tests.support.upstream import pattern_chunks

    with (ftp.root / "big.bin").open("wb") as handle:
        for chunk in pattern_chunks(100 << 20):
            handle.write(chunk)
    caplog.set_level(logging.INFO, logger="pyftpdlib")
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(b"GET /ftp/download?path=/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        while received < 1 << 20:
            received += len(sock.recv(65536))
    deadline = time.monotonic() + 5
    while not any("RETR" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.02)
    retr = [r.getMessage() for r in caplog.records if "RETR" in r.getMessage()]
    assert retr and "completed=0" in retr[0]  # the server saw the transfer aborted, not sent in full


def test_a_raw_upload_with_query_credentials_stores_the_body(edge: EdgeServer, ftp: FtpServer) -> None:
    reply = call(edge.port, "PUT", "/mine/upload?path=/q.txt&username=alice&password=secret", body=b"raw body")
    assert reply.status == 201 and (ftp.root / "q.txt").read_bytes() == b"raw body"


def test_the_root_cannot_be_renamed(edge: EdgeServer) -> None:
    assert call(edge.port, "POST", "/ftp/rename?from=/&to=/elsewhere").status == 400
