"""deploy/kubernetes/: the manifests parse, set only variables Rusta reads, run commands Rusta accepts, and probe
paths a real gateway answers."""
from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError

from rusta.env import envfloat
from tests.deploy.manifests import (
    KUSTOMIZATION,
    MANIFEST_DIR,
    SETTINGS_MODULE,
    Container,
    Obj,
    celery_app_option,
    celery_lines,
    celery_subcommand,
    containers,
    load_file,
    load_objects,
    manage_py_lines,
    manifest_files,
    named,
    of_kind,
    pod_template,
    project_module,
    variables_read,
    workloads,
)
from tests.support.gateway import ROOT, http, start_gateway

OBJECTS = load_objects()
CONTAINERS = list(containers(OBJECTS))
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# runproxy's supervisor kills a worker still busy this long after --grace (rusta/server.py, Supervisor._on_stop).
SUPERVISOR_DEADLINE_AFTER_GRACE = 5


def load_command(name: str) -> BaseCommand:
    app = get_commands()[name]
    return app if isinstance(app, BaseCommand) else load_command_class(app, name)


def parse_command_line(name: str, arguments: list[str], environ: dict[str, str]) -> argparse.Namespace:
    """The options `manage.py <name> <arguments>` runs with, its defaults read from the container's environment."""
    with mock.patch.dict(os.environ, environ):
        return load_command(name).create_parser("manage.py", name).parse_args(arguments)


def runproxy_containers() -> list[Container]:
    return [c for c in CONTAINERS if any(name == "runproxy" for name, _ in manage_py_lines(c))]


def gateway() -> Container:
    (container,) = runproxy_containers()
    return container


def runproxy_options(container: Container) -> argparse.Namespace:
    (arguments,) = [args for name, args in manage_py_lines(container) if name == "runproxy"]
    environ = container.environment(OBJECTS)
    options = parse_command_line("runproxy", arguments, environ)
    if "--grace" not in arguments:  # its default is settings.RUSTA_SHUTDOWN_GRACE, read from the pod's environment
        with mock.patch.dict(os.environ, environ):
            options.grace = envfloat("RUSTA_SHUTDOWN_GRACE", settings.RUSTA_SHUTDOWN_GRACE)
    return options


@functools.cache
def environment_read_by_rusta() -> set[str]:
    """Variables settings.py reads, and those the project's own modules run by the manifests read (runproxy,
    ensureadmin, the Celery app)."""
    modules = [load_command(name).__module__ for c in CONTAINERS for name, _ in manage_py_lines(c)]
    for app in (app for c in CONTAINERS for line in celery_lines(c) if (app := celery_app_option(line))):
        modules += [app, f"{app}.celery"]  # where `celery -A` looks for the app (celery.app.utils.find_app)
    sources = {SETTINGS_MODULE, *(path for module in modules if (path := project_module(module)))}
    return variables_read(sorted(sources))


def environment_set_by_manifests() -> set[str]:
    names: set[str] = set()
    for obj in OBJECTS:
        if obj["kind"] == "ConfigMap":
            names |= set(obj.get("data", {}))
        elif obj["kind"] == "Secret":
            names |= set(obj.get("data", {})) | set(obj.get("stringData", {}))
    return names | {entry["name"] for container in CONTAINERS for entry in container.spec.get("env", [])}


def container_subprocess_env(container: Container, var_dir: Path) -> dict[str, str]:
    return {**os.environ, **container.environment(OBJECTS), "RUSTA_VAR_DIR": str(var_dir)}


def selects(selector: dict[str, str], workload: Obj) -> bool:
    labels = pod_template(workload)["metadata"].get("labels", {})
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def workload_of(selector: dict[str, str]) -> Obj:
    (workload,) = [w for w in workloads(OBJECTS) if selects(selector, w)]
    return workload


# --- The files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_every_manifest_parses_into_named_kubernetes_objects(path):
    documents = load_file(path)
    assert documents, f"{path.name} holds no object"
    for doc in documents:
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], doc
        assert isinstance(doc.get("kind"), str) and doc["kind"], doc
        assert isinstance(doc.get("metadata", {}).get("name"), str) and doc["metadata"]["name"], doc


def test_the_kustomization_lists_exactly_the_manifest_files():
    (kustomization,) = load_file(KUSTOMIZATION)
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert sorted(listed) == [path.name for path in manifest_files()]


def test_no_two_objects_share_a_kind_and_name():
    keys = [(obj["kind"], obj["metadata"]["name"]) for obj in OBJECTS]
    assert len(keys) == len(set(keys)), keys


def test_every_container_uses_the_image_the_kustomization_sets():
    (kustomization,) = load_file(KUSTOMIZATION)
    images = {entry["name"] for entry in kustomization.get("images", [])}
    for container in CONTAINERS:
        name = re.sub(r"(:[^/:]+)?(@.+)?$", "", container.spec["image"])
        assert name in images, f"{container.name}: `kustomize edit set image` would leave {name} behind"


# --- The environment ----------------------------------------------------------------------------------------------

def test_the_scan_finds_the_variables_rusta_reads():
    # Guards the scan: if it found nothing, every name below would fail, but a scan that found too much would let
    # misspellings through.
    read = environment_read_by_rusta()
    assert {"DATABASE_URL", "REDIS_URL", "RUSTA_SECRET_KEY", "RUSTA_SECRET_KEY_FILE", "RUSTA_SHUTDOWN_GRACE",
            "RUSTA_WORKERS", "DJANGO_SUPERUSER_PASSWORD"} <= read
    assert "RUSTA_WORKER" not in read and "DATABASE_URI" not in read


@pytest.mark.parametrize("name", sorted(environment_set_by_manifests()))
def test_every_variable_the_manifests_set_is_read_by_rusta(name):
    assert name in environment_read_by_rusta(), (
        f"{name} is set by deploy/kubernetes/ but neither rusta/settings.py nor a command the manifests run reads it")


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda c: c.name)
def test_every_env_from_names_a_config_map_or_secret_of_the_set(container):
    for source in container.spec.get("envFrom", []):
        ((ref_kind, ref),) = [(key, value) for key, value in source.items() if key.endswith("Ref")]
        kind = {"configMapRef": "ConfigMap", "secretRef": "Secret"}[ref_kind]
        assert [obj for obj in of_kind(OBJECTS, kind) if obj["metadata"]["name"] == ref["name"]], (
            f"{container.name} reads {kind} {ref['name']}, which the set does not hold")


def test_the_settings_and_system_checks_accept_the_gateways_environment(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                            env=container_subprocess_env(gateway(), tmp_path / "var"), timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("container", [c for c in CONTAINERS if celery_lines(c) or c in runproxy_containers()],
                         ids=lambda c: c.name)
def test_gateways_and_celery_share_one_postgresql_and_one_redis(container):
    # Pods on SQLite or on the disk broker would each be a gateway of their own, with their own routes.
    env = container.environment(OBJECTS)
    database, redis = urlsplit(env.get("DATABASE_URL", "")), urlsplit(env.get("REDIS_URL", ""))
    assert database.scheme in {"postgres", "postgresql"}, f"{container.name}: DATABASE_URL is {database.scheme!r}"
    assert redis.scheme in {"redis", "rediss"}, f"{container.name}: REDIS_URL is {redis.scheme!r}"
    services = {obj["metadata"]["name"] for obj in of_kind(OBJECTS, "Service")}
    for url in (database, redis):
        # A bare name is a Service in the pod's namespace: it must be one of the set.
        assert url.hostname and ("." in url.hostname or url.hostname in services), (
            f"{container.name}: {url.hostname!r} names no Service of the set")


# --- The commands --------------------------------------------------------------------------------------------------

MANAGE_PY_LINES = [(c, name, args) for c in CONTAINERS for name, args in manage_py_lines(c)]


@pytest.mark.parametrize(("container", "name", "arguments"), MANAGE_PY_LINES,
                         ids=[f"{c.name}:{name}" for c, name, _ in MANAGE_PY_LINES])
def test_every_manage_py_command_line_is_accepted_by_its_command(container, name, arguments):
    assert name in get_commands(), f"{container.name} runs `manage.py {name}`, which does not exist"
    try:
        parse_command_line(name, arguments, container.environment(OBJECTS))
    except CommandError as exc:
        pytest.fail(f"{container.name}: manage.py {name} {' '.join(arguments)}: {exc}")


def test_the_gateway_listens_on_the_container_ports_and_all_addresses():
    container, options = gateway(), runproxy_options(gateway())
    assert sorted(container.ports().values()) == sorted([options.port, options.admin_port])
    # On 127.0.0.1 neither the kubelet's probes nor the Services would reach the listeners.
    assert options.host not in {"127.0.0.1", "localhost", "::1"}
    assert (options.admin_host or options.host) not in {"127.0.0.1", "localhost", "::1"}


def test_the_gateway_leaves_the_background_work_to_celery():
    assert runproxy_options(gateway()).background is False, "runproxy needs --no-background: Celery runs it"


CELERY_LINES = [(c, line) for c in CONTAINERS for line in celery_lines(c)]


@pytest.mark.parametrize(("container", "arguments"), CELERY_LINES, ids=[c.name for c, _ in CELERY_LINES])
def test_celery_commands_run_the_projects_celery_app_and_its_schedule(container, arguments):
    app_name = celery_app_option(arguments)
    assert app_name, f"{container.name}: celery without -A runs no Rusta task"
    app = find_app(app_name)  # as `celery -A` finds it
    assert isinstance(app, Celery) and app.main == "rusta"
    assert "metrics.run_health_checks" in {entry["task"] for entry in app.conf.beat_schedule.values()}


@pytest.mark.parametrize(("container", "arguments"), CELERY_LINES, ids=[c.name for c, _ in CELERY_LINES])
def test_celery_commands_use_only_options_celery_knows(container, arguments, tmp_path):
    global_options, subcommand, tail = celery_subcommand(arguments)
    result = subprocess.run([sys.executable, "-m", "celery", *global_options, subcommand, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env=container_subprocess_env(container, tmp_path / "var"))
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"(?<![\w-])(--?\w[\w-]*)", result.stdout))
    for option in (token.split("=", 1)[0] for token in tail if token.startswith("-")):
        assert option in listed, f"{container.name}: celery {subcommand} has no {option}"


def test_exactly_one_celery_beat_runs_and_is_replaced_not_doubled():
    beats = [(c, line) for c, line in CELERY_LINES if celery_subcommand(line)[1] == "beat"
             or (celery_subcommand(line)[1] == "worker" and {"-B", "--beat"} & set(line))]
    assert len(beats) == 1, f"beat runs in {[c.name for c, _ in beats]}: each would send every task"
    workload = beats[0][0].workload
    assert workload["kind"] == "Deployment" and workload["spec"].get("replicas") == 1
    assert workload["spec"].get("strategy", {}).get("type") == "Recreate", "a rolling update runs two beats a while"
    autoscaled = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(OBJECTS, "HorizontalPodAutoscaler")}
    assert workload["metadata"]["name"] not in autoscaled


def test_migrations_run_once_in_a_job_before_gateways_and_workers_start():
    appliers = [(c, args) for c, name, args in MANAGE_PY_LINES if name == "migrate" and "--check" not in args]
    assert [c.workload["kind"] for c, _ in appliers] == ["Job"], "one Job migrates; pods would race each other"
    for container in runproxy_containers() + [c for c, line in CELERY_LINES if celery_subcommand(line)[1] == "worker"]:
        waits = [c for c in CONTAINERS if c.init and c.workload is container.workload
                 and any(name == "migrate" and "--check" in args for name, args in manage_py_lines(c))]
        assert waits, f"{container.name} starts without waiting for the migrations"


# --- Probes, shutdown and scaling -------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_every_probe_of_the_gateway_answers_200_on_the_listener_it_names(tmp_path):
    container, options = gateway(), runproxy_options(gateway())
    listener = {options.port: "proxy", options.admin_port: "admin"}
    probes = {kind: container.spec[kind]["httpGet"] for kind in PROBES if kind in container.spec}
    assert {"readinessProbe", "livenessProbe"} <= set(probes)
    # The gateway runs with the ConfigMap's settings; the database and the secret key are the test's.
    running = start_gateway(tmp_path, extra_env=container.environment(OBJECTS, secrets=False))
    try:
        answers: dict[str, Any] = {}
        for kind, get in probes.items():
            port = container.ports()[get["port"]] if isinstance(get["port"], str) else int(get["port"])
            assert port in listener, f"{kind} asks port {port}, where runproxy does not listen"
            base = running.url if listener[port] == "proxy" else running.admin_url
            answers[kind] = (listener[port], get["path"], http("GET", base + get["path"])[0])
    finally:
        assert running.stop() == 0
    assert {kind: status for kind, (_, _, status) in answers.items()} == dict.fromkeys(probes, 200), answers


def test_the_gateway_is_killed_only_after_its_requests_in_flight_had_their_grace():
    container, options = gateway(), runproxy_options(gateway())
    pre_stop = container.spec.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        pause = float(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop.get("exec", {}).get("command", [])
        assert command[:1] == ["sleep"], "a preStop pause lets the Services stop sending before SIGTERM stops accepting"
        pause = float(command[1])
    period = pod_template(container.workload)["spec"].get("terminationGracePeriodSeconds", 30)
    assert period > pause + options.grace + SUPERVISOR_DEADLINE_AFTER_GRACE, (
        f"SIGKILL after {period} s cuts the {options.grace} s grace that starts after a {pause} s preStop")


@pytest.mark.parametrize("service", of_kind(OBJECTS, "Service"), ids=lambda s: s["metadata"]["name"])
def test_every_service_reaches_pods_of_the_set_on_ports_they_open(service):
    if service["spec"].get("type") == "ExternalName":
        assert service["spec"].get("externalName"), "an ExternalName Service needs the host it stands for"
        return
    workload = workload_of(service["spec"].get("selector", {}))
    opened = {key: port for c in CONTAINERS if c.workload is workload and not c.init
              for key, port in c.ports().items()}
    for port in service["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        assert (target in opened) if isinstance(target, str) else (int(target) in opened.values()), (
            f"port {port['port']} sends to {target!r}, which {workload['metadata']['name']}'s pods do not open")


def test_the_autoscaler_scales_the_gateway_on_the_cpu_its_pods_request():
    (hpa,) = of_kind(OBJECTS, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = named(OBJECTS, hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
    assert target is gateway().workload
    assert "replicas" not in target["spec"], "every apply would reset the autoscaler's count"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    for container in (c for c in CONTAINERS if c.workload is target and not c.init):
        # Without a request the autoscaler has nothing to measure utilisation against and never scales.
        assert container.spec.get("resources", {}).get("requests", {}).get("cpu"), container.name
    assert hpa["spec"]["minReplicas"] >= 2, "one gateway pod's restart would stop the proxy"


def test_the_disruption_budget_lets_a_drain_take_one_gateway_at_a_time():
    (pdb,) = of_kind(OBJECTS, "PodDisruptionBudget")
    assert workload_of(pdb["spec"]["selector"]["matchLabels"]) is gateway().workload
    (hpa,) = of_kind(OBJECTS, "HorizontalPodAutoscaler")
    fewest = hpa["spec"]["minReplicas"]
    spec = pdb["spec"]
    allowed = int(spec["maxUnavailable"]) if "maxUnavailable" in spec else fewest - int(spec["minAvailable"])
    assert 1 <= allowed < fewest, f"at {fewest} pods a drain may take {allowed}"


# --- Tools, when installed ---------------------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_every_object_into_the_namespace():
    result = subprocess.run(["kubectl", "kustomize", str(MANIFEST_DIR)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in OBJECTS)
    (kustomization,) = load_file(KUSTOMIZATION)
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == kustomization["namespace"], obj["metadata"]


@pytest.mark.skipif(shutil.which("kubeconform") is None, reason="kubeconform is not installed")
def test_kubeconform_accepts_every_object_in_strict_mode():
    # Schemas come from KUBECONFORM_SCHEMA_LOCATION (a local copy) when set, else from kubeconform's default.
    location = os.environ.get("KUBECONFORM_SCHEMA_LOCATION", "default")
    result = subprocess.run(["kubeconform", "-strict", "-summary", "-schema-location", location,
                             *map(str, manifest_files())], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
