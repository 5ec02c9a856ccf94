"""The FTP client's own guards: passive replies read strictly, no command line with CR, LF or NUL."""
from __future__ import annotations

import asyncio

import pytest

from protocols.ftp.client import FtpClient, parse_epsv, parse_pasv
from protocols.ftp.replies import FtpProtocolError
from tests.support.ftpserver import FtpServer


def test_a_pasv_reply_gives_host_and_port() -> None:
    assert parse_pasv("Entering Passive Mode (127,0,0,1,195,80).") == ("127.0.0.1", 50000)


def test_a_pasv_reply_with_numbers_over_255_is_refused() -> None:
    with pytest.raises(FtpProtocolError):
        parse_pasv("Entering Passive Mode (127,0,0,300,1,1)")


def test_an_epsv_reply_gives_only_a_port() -> None:
    assert parse_epsv("Entering Extended Passive Mode (|||50001|)") == 50001


@pytest.mark.parametrize("text", ["Entering Extended Passive Mode (|||70000|)", "no port here"])
def test_unreadable_epsv_replies_are_refused(text: str) -> None:
    with pytest.raises(FtpProtocolError):
        parse_epsv(text)


def test_a_command_line_with_cr_lf_is_never_sent() -> None:
    async def scenario(port: int) -> None:
        client = await FtpClient.connect("127.0.0.1", port, tls=None, connect_timeout=5, read_timeout=5)
        try:
            with pytest.raises(ValueError):
                await client.command("DELE /a\r\nDELE /b")
            assert (await client.command("NOOP")).code == 200  # the connection is still in step
        finally:
            client.abort()

    with FtpServer() as ftp:
        asyncio.run(scenario(ftp.port))
