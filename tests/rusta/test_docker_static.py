"""The Docker image ships every static file the admin pages load: the dashboard's chart library and the admin's own.

No Docker daemon is needed. The Dockerfile is read, the stage the final stage copies the chart library from is
run here as written (its RUN lines in `sh`, so npm fetches the pinned uPlot from the registry), the COPY is done
into a directory standing for the image, and a Django process with the final stage's environment (and a fresh,
empty var directory for the volume) renders the dashboard and asks the admin listener for the files.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from metrics.dashboard.views import UPLOT_SCRIPT, UPLOT_STYLE
from tests.support.gateway import ROOT

DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
STAGE_TIMEOUT = 90  # seconds for one RUN line; npm takes about one when the registry answers
PROBE_TIMEOUT = 60
ADMIN_CSS = "admin/css/base.css"
DASHBOARD = "/admin/metrics/dashboard/"

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the image's charts stage "
                                                                     "cannot be reproduced here")

# Runs in the image's environment: what the entry point does first (migrate), then the dashboard as a staff user
# sees it, then the admin listener's ASGI application asked for static files as a browser would.
PROBE = """
import asyncio, json
import django
django.setup()
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
from rusta.asgi import build_admin_application

call_command("migrate", verbosity=0)
setup_test_environment()  # lets the test client's host through ALLOWED_HOSTS
client = Client()
client.force_login(get_user_model().objects.create_superuser("probe", "probe@example.com", "probe"))
page = client.get(DASHBOARD)
app = build_admin_application()

async def status(path):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8001")], "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 8001)}
    app_instance = ApplicationCommunicator(app, scope)
    await app_instance.send_input({"type": "http.request", "body": b""})
    start = await app_instance.receive_output(10)
    await app_instance.wait(10)
    return start["status"]

print(json.dumps({
    "page_status": page.status_code,
    "page": page.content.decode(),
    "found": {name: finders.find(name) for name in FILES},
    "served": {name: asyncio.run(status("/" + settings.STATIC_URL.lstrip("/") + name)) for name in FILES},
}))
"""


@dataclass
class Stage:
    """One FROM ... of the Dockerfile: its name (None when unnamed) and its instructions, in order."""

    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    """The ARG defaults declared before the first FROM, and the stages."""

    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        matches = [stage for stage in self.stages if stage.name == name]
        assert matches, f"the Dockerfile has no stage named {name!r}"
        return matches[0]


def logical_lines(text: str) -> list[str]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    lines: list[str] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        lines.append(" ".join([*pending, line]))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return lines


def parse_dockerfile(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            stages.append(Stage(words[2] if len(words) == 3 and words[1].upper() == "AS" else None))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


def assignments(args: str) -> dict[str, str]:
    """`ENV A=1 B=2` (the only ENV form Rusta's Dockerfile uses)."""
    pairs = [word.partition("=") for word in shlex.split(args)]
    assert all(sep for _, sep, _ in pairs), f"ENV without '=': {args}"
    return {name: value for name, _, value in pairs}


def inside(root: Path, path: str) -> Path:
    """An absolute path of an image or stage, under the directory standing for it here."""
    assert path.startswith("/"), f"expected an absolute path, got {path!r}"
    return root / path.lstrip("/")


def run_stage(stage: Stage, global_args: dict[str, str], root: Path) -> None:
    """Runs the stage's instructions as `docker build` would, with `root` standing for its file system."""
    cwd, build_args = root, {}
    for keyword, args in stage.instructions:
        if keyword == "ARG":
            name, sep, default = args.partition("=")
            build_args[name] = default if sep else global_args[name]
        elif keyword == "WORKDIR":
            cwd = inside(root, args)
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "RUN":
            env = {**os.environ, **build_args, "npm_config_update_notifier": "false"}
            result = subprocess.run(["sh", "-c", args], cwd=cwd, env=env, capture_output=True, text=True,
                                    timeout=STAGE_TIMEOUT)
            assert result.returncode == 0, f"RUN {args}\n{result.stdout}\n{result.stderr}"
        else:
            raise AssertionError(f"this test does not reproduce {keyword} in stage {stage.name!r}: teach it")


def makefile_uplot_version() -> str:
    match = re.search(r"^UPLOT_VERSION\s*:?=\s*(\S+)\s*$", MAKEFILE.read_text(), re.MULTILINE)
    assert match, "the Makefile sets no UPLOT_VERSION"
    return match.group(1)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What a Django process in the built image finds and serves, plus where the image keeps the chart library."""
    dockerfile = parse_dockerfile(DOCKERFILE.read_text())
    final = dockerfile.stages[-1]
    env = {name: value for args in final.arguments("ENV") for name, value in assignments(args).items()}
    vendor = env["RUSTA_STATIC_VENDOR_DIR"]
    image = tmp_path_factory.mktemp("image")
    copied = False
    for args in final.arguments("COPY"):
        words = shlex.split(args)
        source_stage = next((w.removeprefix("--from=") for w in words if w.startswith("--from=")), None)
        *sources, target = [w for w in words if not w.startswith("--")]
        if source_stage is None or not Path(target).is_relative_to(vendor):
            continue
        stage_root = tmp_path_factory.mktemp(source_stage)
        run_stage(dockerfile.stage(source_stage), dockerfile.global_args, stage_root)
        for source in sources:
            shutil.copytree(inside(stage_root, source), inside(image, target), dirs_exist_ok=True)
        copied = True
    assert copied, f"the final stage copies nothing into RUSTA_STATIC_VENDOR_DIR ({vendor})"

    run_env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    run_env.update(DJANGO_SETTINGS_MODULE=env["DJANGO_SETTINGS_MODULE"],
                   RUSTA_VAR_DIR=str(inside(image, env["RUSTA_VAR_DIR"])),  # the empty volume
                   RUSTA_STATIC_VENDOR_DIR=str(inside(image, vendor)))
    script = (f"DASHBOARD = {DASHBOARD!r}\nFILES = {[UPLOT_SCRIPT, UPLOT_STYLE, ADMIN_CSS]!r}\n" + PROBE)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=run_env, capture_output=True, text=True,
                            timeout=PROBE_TIMEOUT)
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout.splitlines()[-1]), "vendor": str(inside(image, vendor))}


def test_the_image_pins_the_uplot_version_the_makefile_pins():
    dockerfile = parse_dockerfile(DOCKERFILE.read_text())
    assert dockerfile.global_args.get("UPLOT_VERSION") == makefile_uplot_version()


@needs_npm
def test_the_dashboard_in_the_image_loads_the_chart_library_instead_of_saying_it_is_missing(probe):
    assert probe["page_status"] == 200
    assert f'<script src="/static/{UPLOT_SCRIPT}"></script>' in probe["page"]
    assert f'href="/static/{UPLOT_STYLE}"' in probe["page"]
    assert 'id="charts-missing"' not in probe["page"]


@needs_npm
def test_the_admin_listener_in_the_image_serves_the_chart_library_from_outside_the_volume(probe):
    assert probe["served"][UPLOT_SCRIPT] == 200
    assert probe["served"][UPLOT_STYLE] == 200
    assert Path(probe["found"][UPLOT_SCRIPT]).is_relative_to(probe["vendor"])


@needs_npm
def test_the_admin_listener_in_the_image_serves_the_admins_own_files_without_var(probe):
    assert probe["served"][ADMIN_CSS] == 200
    assert not Path(probe["found"][ADMIN_CSS]).is_relative_to(ROOT / "var")
