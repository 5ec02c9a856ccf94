"""Lets the tests run from a checkout where the package is not installed: its `src` folder goes on sys.path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("rusta_example_plugin") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
