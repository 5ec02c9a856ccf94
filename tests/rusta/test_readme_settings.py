"""README's environment table lists every variable the code reads, with the default the code uses."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*(path for package in ("rusta", "routes", "metrics", "protocols")
             for path in sorted((ROOT / package).rglob("*.py"))), ROOT / "manage.py"]
ENV_HELPERS = {"envstr", "envint", "envbool", "envfloat", "envlist", "envchoice"}
NOT_GIVEN = object()  # a helper called without a default, or with one computed at run time


def environ_reads(tree: ast.AST) -> list[tuple[str, object]]:
    """(name, default) for each literal variable name read through rusta.env's helpers or os.environ."""
    reads: list[tuple[str, object]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
            func = node.func
            if isinstance(func, ast.Name) and func.id in ENV_HELPERS:
                default = node.args[1] if len(node.args) > 1 else None
                literal = isinstance(default, ast.Constant) and not isinstance(default.value, type(None))
                reads.append((name, default.value if literal else NOT_GIVEN))
            elif isinstance(func, ast.Attribute) and func.attr in ("get", "getenv") and is_environ(func.value):
                reads.append((name, NOT_GIVEN))
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.slice, ast.Constant):
            reads.append((node.slice.value, NOT_GIVEN))
    return [(name, default) for name, default in reads if isinstance(name, str)]


def is_environ(node: ast.expr) -> bool:
    """`os.environ` or `os` (for os.getenv)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name)
                                                                             and node.id == "os")


def code_reads() -> dict[str, set[object]]:
    """Every variable name the code reads, with the literal defaults it is read with."""
    found: dict[str, set[object]] = {}
    for path in SOURCES:
        for name, default in environ_reads(ast.parse(path.read_text(), str(path))):
            found.setdefault(name, set()).add(default)
    return found


def readme_table() -> dict[str, str]:
    """Each variable named in the first column of README's environment table, with its default column."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration (environment)\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.startswith("|"):
            continue
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
            rows[name] = cells[1]
    return rows


def shown(default: object) -> str:
    """A default as the README writes it: `true`, `20` (for 20.0), `0.5`, `WARNING`."""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float):
        return format(default, "g")
    return str(default)


READS = code_reads()
TABLE = readme_table()


def test_the_scan_finds_the_settings_it_should():
    # Guards the scan itself: a regression here would make the tests below pass on nothing.
    assert {"RUSTA_PORT", "RUSTA_ADMIN_PORT", "RUSTA_VAR_DIR", "DATABASE_URL", "RUSTA_ACCESS_LOG"} <= set(READS)
    assert READS["RUSTA_ACCESS_LOG"] == {True}


@pytest.mark.parametrize("name", sorted(READS))
def test_every_variable_the_code_reads_is_in_the_readme_table(name):
    assert name in TABLE, f"{name} is read by the code but missing from README's 'Configuration (environment)' table"


@pytest.mark.parametrize("name", sorted(name for name, defaults in READS.items()
                                        if len(defaults) == 1 and NOT_GIVEN not in defaults))
def test_the_readme_shows_the_codes_default(name):
    (default,) = READS[name]
    assert TABLE.get(name, "").replace("`", "") == shown(default), (
        f"README shows {TABLE.get(name)!r} as {name}'s default; the code uses {default!r}")


def test_every_rusta_variable_in_the_readme_table_is_read_by_the_code():
    stale = sorted(name for name in TABLE if name.startswith("RUSTA_") and name not in READS)
    assert not stale, f"README's environment table lists variables nothing reads: {stale}"
