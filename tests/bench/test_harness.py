"""`make bench`'s harness: what it starts must exist in this checkout, or every Rusta scenario is skipped."""
from __future__ import annotations

import subprocess
import sys

from bench import harness


def test_the_commands_it_runs_exist_in_this_checkout() -> None:
    # A moved command made the bench skip Rusta and still exit 0 ("runproxy.py not in this checkout yet").
    assert harness.RUNPROXY.is_file() and harness.IMPORTCONFIG.is_file()


def test_the_command_names_it_runs_are_known_to_manage_py() -> None:
    commands = subprocess.run([sys.executable, "manage.py", "help", "--commands"], cwd=harness.ROOT,
                              capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert {harness.RUNPROXY.stem, harness.IMPORTCONFIG.stem} <= set(commands)
