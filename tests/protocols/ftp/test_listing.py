"""Reading directory listings: MLSD facts first, Unix `ls -l` LIST lines as the fallback."""
from __future__ import annotations

from protocols.ftp.listing import Entry, parse_list, parse_mlsd


def test_mlsd_facts_become_typed_entries() -> None:
    text = ("type=cdir;modify=20240101000000; .\r\n"
            "type=pdir;modify=20240101000000; ..\r\n"
            "type=file;size=12;modify=20240102030405;perm=r; notes with spaces.txt\r\n"
            "Type=DIR;Modify=20240101000000; sub\r\n")
    assert parse_mlsd(text) == [
        Entry("notes with spaces.txt", "file", 12, "2024-01-02T03:04:05Z"),
        Entry("sub", "dir", None, "2024-01-01T00:00:00Z"),
    ]


def test_unreadable_mlsd_lines_are_skipped() -> None:
    assert parse_mlsd("garbage\r\n\r\ntype=file;size=x; odd\r\n") == [Entry("odd", "file", None, None)]


def test_unix_list_lines_become_entries() -> None:
    text = ("total 8\r\n"
            "-rw-r--r--   1 ftp ftp        1234 Jan 02 10:00 report 2024.csv\r\n"
            "drwxr-xr-x   2 ftp ftp        4096 Dec 31  2023 archive\r\n"
            "lrwxrwxrwx   1 ftp ftp           7 Jan 02 10:00 latest -> archive\r\n")
    assert parse_list(text) == [
        Entry("report 2024.csv", "file", 1234), Entry("archive", "dir", 4096), Entry("latest", "link", 7),
    ]
