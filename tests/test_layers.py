"""Layers only point down: the data plane (protocols/) imports nothing from a Django app, nor Django itself.

The rule, read from the source with `ast` so a failure names the file, the line and the import: a module under
protocols/ may import the standard library, third-party libraries that do not need Django, and protocols/.
Everything else this repository holds (routes, metrics, rusta, tests...) is a Django app or wiring, and Django
and the libraries that require it (Channels, DRF...) would drag settings and the ORM onto the hot path.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_PLANE = "protocols"


# --- Reading imports from source ------------------------------------------------------------------------------

def python_files(package: str, root: Path = ROOT) -> list[Path]:
    """Every .py file under `root / package`, in a stable order."""
    return sorted(path for path in (root / package).rglob("*.py") if "__pycache__" not in path.parts)


def package_of(path: Path, root: Path) -> list[str]:
    """The package a module's relative imports start from (`protocols.http` for protocols/http/proxy.py)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1]


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `path`: at the top, inside functions and `if TYPE_CHECKING:`, relative
    ones resolved (one climbing out of the top-level package comes back starting with "."), and
    `importlib.import_module("...")` / `__import__("...")` calls with a literal name."""
    package = package_of(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                yield node.lineno, node.module or ""
                continue
            keep = len(package) - (node.level - 1)
            tail = [node.module] if node.module else []
            if keep < 1:
                yield node.lineno, "." * node.level + (node.module or "")
            else:
                yield node.lineno, ".".join(package[:keep] + tail)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


# --- What counts as coupling ----------------------------------------------------------------------------------

def own_packages() -> frozenset[str]:
    """The top-level import names this repository defines: its Django apps, the wiring, tests, bench, manage."""
    names = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    names |= {path.stem for path in ROOT.glob("*.py")}
    return frozenset(names)


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _requires_django(distribution: str) -> bool:
    """Whether `distribution` is Django or needs it to import (directly or through what it requires; optional
    extras don't count: sentry-sdk[django] does not make sentry-sdk a Django library)."""
    seen: set[str] = set()
    pending = [distribution]
    while pending:
        name = _canonical(pending.pop())
        if name == "django":
            return True
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requirements:
            spec, _, marker = requirement.partition(";")
            found = re.match(r"[A-Za-z0-9._-]+", spec.strip())
            if found and "extra" not in marker:
                pending.append(found.group())
    return False


@cache
def django_packages() -> frozenset[str]:
    """Top-level import names of the installed libraries that are Django or need it (django, channels,
    rest_framework, drf_spectacular, django_prometheus...)."""
    names = {"django"}
    for top, distributions in metadata.packages_distributions().items():
        if any(_requires_django(distribution) for distribution in distributions):
            names.add(top)
    return frozenset(names)


def coupling(module: str) -> str | None:
    """Why the data plane may not import `module`, or None when it may."""
    top = module.split(".")[0]
    if not top:
        return f"a relative import that climbs out of {DATA_PLANE}/"
    if top != DATA_PLANE and top in own_packages():
        return f"{top}/ is this repository's Django side (an app, the wiring or tests), not the data plane"
    if top in django_packages():
        return f"{top} is Django or needs it"
    return None


# --- The data plane -------------------------------------------------------------------------------------------

def test_the_data_plane_imports_no_django_app_and_no_django():
    found = []
    for path in python_files(DATA_PLANE):
        for line, module in imports(path):
            reason = coupling(module)
            if reason:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}: {reason}")
    assert not found, (
        f"{DATA_PLANE}/ may import only the standard library, third-party libraries that do not need Django, "
        f"and {DATA_PLANE}/ itself:\n  " + "\n  ".join(found))


def test_the_data_plane_loads_without_django_or_an_app():
    """Importing every module of protocols/ in a fresh interpreter loads neither Django nor one of our apps:
    what the source rule above means at run time, including what third-party imports pull in."""
    modules = [".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for path in python_files(DATA_PLANE)]
    forbidden = sorted((own_packages() - {DATA_PLANE}) | django_packages())
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r}))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "", f"importing {DATA_PLANE}/ loaded: {result.stdout.strip()}"


def test_the_import_walk_sees_lazy_relative_and_dynamic_imports(tmp_path):
    module = tmp_path / "protocols" / "http" / "sneaky.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import headers\n"
        "if TYPE_CHECKING:\n"
        "    from metrics.models import Point\n"
        "def later():\n"
        "    import routes.models\n"
        "    from ... import rusta\n"
        "    return importlib.import_module('django.conf')\n", encoding="utf-8")
    found = sorted(imports(module, root=tmp_path))
    assert found == [(1, "typing"), (2, "protocols.http"), (4, "metrics.models"), (6, "routes.models"), (7, "..."),
                     (8, "django.conf")]
    assert [coupling(name) is not None for _, name in found] == [False, False, True, True, True, True]


# --- The Django apps ------------------------------------------------------------------------------------------
# Between the apps, imports point one way: rusta (the wiring: settings, URLs, ASGI, the commands that run the
# processes) may import routes and metrics; metrics (observability: recorder, history, dashboard) may import
# routes (the control plane: configuration, health checks, snapshot); routes imports neither. No two apps may
# import each other, whatever the route through a third. Of rusta, the apps may use only what is not wiring: the
# package itself (its version) and rusta.env (the typed environment readers), which import no app; these are not
# edges of the graph.
WIRING_FOR_APPS = frozenset({"rusta", "rusta.__version__", "rusta.env"})


def django_apps(root: Path = ROOT) -> frozenset[str]:
    """This repository's Django apps: the top-level packages with an apps.py (routes, metrics, rusta)."""
    return frozenset(path.parent.name for path in root.glob("*/apps.py"))


def app_imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """`imports`, plus `package.name` for each name of a `from package import name` of a top-level package, so
    that `from rusta import server` counts as importing rusta.server, not the rusta package."""
    yield from imports(path, root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module and "." not in node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def allowed_wiring(module: str) -> bool:
    return module in WIRING_FOR_APPS or module.startswith("rusta.env.")


def app_graph(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """app -> {other app it imports: ["file:line imports module", ...]}, from every .py file of each app
    (migrations, management commands and lazy imports included)."""
    apps = django_apps(root)
    graph: dict[str, dict[str, list[str]]] = {app: {} for app in apps}
    for app in sorted(apps):
        for path in python_files(app, root):
            for line, module in app_imports(path, root):
                target = module.split(".")[0]
                if target in apps and target != app and not allowed_wiring(module):
                    graph[app].setdefault(target, []).append(f"{path.relative_to(root)}:{line} imports {module}")
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every cycle of the app graph once, each as the apps in order with the first one repeated at the end."""
    found: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for target in sorted(graph.get(path[-1], {})):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:  # each cycle once: from its smallest app
                walk([*path, target])

    for start in sorted(graph):
        walk([start])
    return found


def describe(cycle: list[str], graph: dict[str, dict[str, list[str]]]) -> str:
    edges = [f"    {source} -> {target}: " + "; ".join(graph[source][target][:3])
             for source, target in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "\n" + "\n".join(edges)


def test_no_two_django_apps_import_each_other():
    graph = app_graph()
    found = cycles(graph)
    assert not found, ("Django apps that import each other (rusta may import routes and metrics, metrics may "
                       "import routes, routes neither):\n  " + "\n  ".join(describe(c, graph) for c in found))


def test_the_control_plane_imports_no_other_app():
    assert app_graph()["routes"] == {}, "routes imports another app (it may use only rusta.env)"


def test_the_apps_use_no_wiring_but_the_env_readers():
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for app in sorted(django_apps() - {"rusta"}) for path in python_files(app)
             for line, module in app_imports(path)
             if module.split(".")[0] == "rusta" and not allowed_wiring(module)]
    assert not found, "routes and metrics may import only rusta and rusta.env of the wiring:\n  " + "\n  ".join(found)


def test_the_app_graph_finds_a_cycle_through_a_third_app(tmp_path):
    sources = {"alpha": "from beta import x\n", "beta": "def f():\n    import gamma.models\n",
               "gamma": "from alpha.admin import y\nfrom rusta import env\n", "rusta": "import alpha\n"}
    for app, source in sources.items():
        (tmp_path / app).mkdir()
        (tmp_path / app / "apps.py").write_text("", encoding="utf-8")
        (tmp_path / app / "mod.py").write_text(source, encoding="utf-8")
    graph = app_graph(tmp_path)
    assert graph["gamma"] == {"alpha": ["gamma/mod.py:1 imports alpha.admin"]}  # rusta.env is no edge
    assert cycles(graph) == [["alpha", "beta", "gamma", "alpha"]]


def test_a_name_imported_from_the_wiring_package_counts_as_its_module(tmp_path):
    (tmp_path / "routes").mkdir()
    (tmp_path / "routes" / "mod.py").write_text("from rusta import env, server\nimport rusta\n", encoding="utf-8")
    found = sorted(module for _, module in app_imports(tmp_path / "routes" / "mod.py", tmp_path))
    assert [(module, allowed_wiring(module)) for module in found] == [
        ("rusta", True), ("rusta", True), ("rusta.env", True), ("rusta.server", False)]
