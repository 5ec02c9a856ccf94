"""Reads deploy/kubernetes/ the way the cluster would: objects, pod specs, each container's command lines and env."""
from __future__ import annotations

import ast
import base64
import importlib.util
import inspect
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import rusta.env
from tests.support.gateway import ROOT

MANIFEST_DIR = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = MANIFEST_DIR / "kustomization.yaml"
SETTINGS_MODULE = ROOT / "rusta" / "settings.py"
# The readers settings.py and the commands use (envstr, envint, ...), taken from rusta.env itself so a new one counts.
ENV_HELPERS = frozenset(name for name, _ in inspect.getmembers(rusta.env, inspect.isfunction) if name.startswith("env"))
# Words a `sh -c` script may put before a command (`until python manage.py migrate --check; do ...`).
SHELL_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "until", "while", "do", "done", "!", "exec"})
SHELL_SEPARATORS = frozenset({";", "&&", "||", "|", "&"})
# `celery --help`'s options that take a value, written apart (`-A rusta`), before the subcommand.
CELERY_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"-A", "--app", "-b", "--broker", "--result-backend", "--loader",
                                              "--config", "--workdir"})

Obj = dict[str, Any]


def manifest_files() -> list[Path]:
    """Every YAML file of the set except the kustomization itself."""
    return sorted(path for path in MANIFEST_DIR.glob("*.y*ml") if path != KUSTOMIZATION)


def load_file(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_objects() -> list[Obj]:
    return [obj for path in manifest_files() for obj in load_file(path)]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def pod_template(workload: Obj) -> Obj:
    """The pod template of a Deployment, Job, StatefulSet, DaemonSet (or of a CronJob's job template)."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: Obj = spec["template"]
    return template


def workloads(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}]


@dataclass(frozen=True)
class Container:
    """One container of one workload, as the kubelet would start it."""

    workload: Obj
    spec: Obj
    init: bool

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}:{self.spec['name']}"

    @property
    def argv(self) -> list[str]:
        return [str(part) for part in (*self.spec.get("command", []), *self.spec.get("args", []))]

    def command_lines(self) -> list[list[str]]:
        """The simple commands the container runs: its argv, or each command of a `sh -c` script."""
        argv = self.argv
        if argv[:2] not in (["sh", "-c"], ["/bin/sh", "-c"]):
            return [argv]
        lexer = shlex.shlex(argv[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lines: list[list[str]] = [[]]
        for token in lexer:
            if token in SHELL_SEPARATORS:
                lines.append([])
            elif lines[-1] or token not in SHELL_KEYWORDS:
                lines[-1].append(token)
        return [line for line in lines if line]

    def ports(self) -> dict[str, int]:
        """containerPort by port name (unnamed ports under their number)."""
        return {str(port.get("name", port["containerPort"])): int(port["containerPort"])
                for port in self.spec.get("ports", [])}

    def environment(self, objects: list[Obj], *, secrets: bool = True) -> dict[str, str]:
        """The variables the container gets: envFrom ConfigMaps and Secrets of the set, then literal env."""
        env: dict[str, str] = {}
        for source in self.spec.get("envFrom", []):
            if "configMapRef" in source:
                env.update(named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
            if "secretRef" in source and secrets:
                env.update(secret_values(named(objects, "Secret", source["secretRef"]["name"])))
        for entry in self.spec.get("env", []):
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
        return env


def containers(objects: list[Obj], *, init: bool = True) -> Iterator[Container]:
    for workload in workloads(objects):
        spec = pod_template(workload)["spec"]
        if init:
            for container in spec.get("initContainers", []):
                yield Container(workload, container, True)
        for container in spec["containers"]:
            yield Container(workload, container, False)


def secret_values(secret: Obj) -> dict[str, str]:
    values = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
    values.update(secret.get("stringData", {}))
    return values


def manage_py_lines(container: Container) -> list[tuple[str, list[str]]]:
    """(command, arguments) of each `python manage.py <command> ...` the container runs."""
    found = []
    for line in container.command_lines():
        for index, token in enumerate(line[:-1]):
            if Path(token).name == "manage.py":
                found.append((line[index + 1], line[index + 2:]))
                break
    return found


def celery_lines(container: Container) -> list[list[str]]:
    """The arguments after `celery` (or `python -m celery`) of each Celery command the container runs."""
    found = []
    for line in container.command_lines():
        if line and Path(line[0]).name == "celery":
            found.append(line[1:])
        elif line[1:3] == ["-m", "celery"]:
            found.append(line[3:])
    return found


def celery_subcommand(arguments: list[str]) -> tuple[list[str], str, list[str]]:
    """(global options, subcommand, its options) of `celery -A rusta worker --loglevel warning`."""
    index = 0
    while index < len(arguments) and arguments[index].startswith("-"):
        index += 2 if arguments[index] in CELERY_GLOBAL_OPTIONS_WITH_VALUE else 1
    if index >= len(arguments):
        raise ValueError(f"no celery subcommand in {arguments}")
    return arguments[:index], arguments[index], arguments[index + 1:]


def celery_app_option(arguments: list[str]) -> str | None:
    """The value of -A / --app (`-A rusta`, `--app=rusta`)."""
    for index, token in enumerate(arguments):
        if token in ("-A", "--app") and index + 1 < len(arguments):
            return arguments[index + 1]
        if token.startswith("--app="):
            return token.split("=", 1)[1]
    return None


def project_module(dotted: str) -> Path | None:
    """The source file of a module of this project (None for Django's own or a library's)."""
    spec = importlib.util.find_spec(dotted)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).resolve()
    return path if ROOT in path.parents and ".venv" not in path.parts else None


def variables_read(paths: list[Path]) -> set[str]:
    """Every literal name read through rusta.env's helpers or os.environ in these modules; envstr also reads
    NAME_FILE (a secret from a file)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                continue
            name, func = node.args[0].value, node.func
            if isinstance(func, ast.Name) and func.id in ENV_HELPERS:
                names.add(name)
                if func.id == "envstr":
                    names.add(f"{name}_FILE")
            elif (isinstance(func, ast.Attribute) and func.attr in ("get", "getenv")
                  and ast.unparse(func.value) in ("os.environ", "os")):
                names.add(name)
    return names
