"""README.md's table of the FTP gateway's operations says what protocols.ftp.operations.OPERATIONS does."""
from __future__ import annotations

import re
from pathlib import Path

from protocols.ftp.operations import OPERATIONS

README = Path(__file__).resolve().parents[3] / "README.md"
HEADER = "| method | path under the route | parameters | what it does | answer |"


def documented() -> dict[str, frozenset[str]]:
    """Operation name ("" for the route's path itself) -> the methods its README row lists."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # past the header and its |---| line
    found: dict[str, frozenset[str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        methods, paths = line.split("|")[1:3]
        for path in re.findall(r"`([^`]*)`", paths):
            found[path.strip("/")] = frozenset(re.findall(r"`([A-Z]+)`", methods))
    return found


def test_the_readme_documents_every_operation_and_nothing_else() -> None:
    assert set(documented()) == set(OPERATIONS)


def test_each_operation_takes_the_methods_the_readme_lists() -> None:
    assert documented() == {name: operation.methods for name, operation in OPERATIONS.items()}
