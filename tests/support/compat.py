"""The earlier gateway's configuration files for tests: Rusta's own fixtures, and the real examples beside the repo.

The fixtures (tests/fixtures/kairos/) are always there. The real examples are in `../shared/compat/` on a machine
that has them, or wherever RUSTA_TEST_SHARED_DIR points (the folder holding `compat/`); a test that checks them
skips, saying where it looked, when they are absent, so a fresh clone's suite passes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPOSITORY / "tests" / "fixtures" / "kairos"


def shared_dir() -> Path:
    """The folder beside the repository that may hold the earlier gateway's files (RUSTA_TEST_SHARED_DIR moves it)."""
    configured = os.environ.get("RUSTA_TEST_SHARED_DIR", "")
    return Path(configured) if configured else REPOSITORY.parent / "shared"


def shared_compat_dir() -> Path:
    return shared_dir() / "compat"


def shared_compat_files() -> list[Path]:
    folder = shared_compat_dir()
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


SHARED_MISSING = (f"the earlier gateway's real example configs are not at {shared_compat_dir()} "
                  "(set RUSTA_TEST_SHARED_DIR to the folder holding compat/)")


def fixture(name: str) -> Path:
    """One of Rusta's own files in the earlier gateway's format; a missing one fails, it never skips."""
    path = FIXTURES_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {name} in {FIXTURES_DIR}")
    return path


def fixture_files() -> list[Path]:
    return sorted(FIXTURES_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def kairos_examples() -> list[Any]:
    """pytest params over every file in the earlier gateway's format: the fixtures (ids `fixtures/NAME`) always,
    the real examples (ids `shared/NAME`) when present, else one `shared` case that skips and says why."""
    cases = [pytest.param(path, id=f"fixtures/{path.name}") for path in fixture_files()]
    shared = shared_compat_files()
    if shared:
        cases += [pytest.param(path, id=f"shared/{path.name}") for path in shared]
    else:
        cases.append(pytest.param(None, id="shared", marks=pytest.mark.skip(reason=SHARED_MISSING)))
    return cases
