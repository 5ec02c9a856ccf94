"""rusta.checks: configuration mistakes outside settings.py stop the gateway with one clear message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rusta.checks import check_otel_environment

ROOT = Path(__file__).resolve().parents[2]


def test_an_unusable_otel_variable_is_a_system_check_error_naming_it(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
    errors = check_otel_environment()
    assert [error.id for error in errors] == ["rusta.E001"]
    assert "OTEL_BSP_MAX_QUEUE_SIZE" in errors[0].msg


def test_usable_or_absent_otel_variables_pass(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert check_otel_environment() == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert check_otel_environment() == []


def test_runproxy_refuses_to_start_with_one_message_and_no_worker_tracebacks(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "RUSTA_VAR_DIR": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://nowhere"}
    result = subprocess.run([sys.executable, "manage.py", "runproxy", "--port", "0", "--admin-port", "0",
                             "--no-background"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "rusta.E001" in result.stderr and "OTEL_EXPORTER_OTLP_ENDPOINT" in result.stderr
    assert "Traceback" not in result.stderr
