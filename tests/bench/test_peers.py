"""Tests of bench/peers.py and the peers' templates: every placeholder filled, and nginx and Caddy accept what
is rendered (`nginx -t`, `caddy validate`)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench import tls
from bench.peers import CADDY, CADDY_TEMPLATES, NGINX_TEMPLATES, render
from bench.procs import BenchError


def _values(run_dir: Path) -> dict[str, int | str]:
    cert = tls.make_certificate(run_dir)
    return {"PORT": 19_999, "UPSTREAM_PORT": 19_998, "CERT": str(cert.cert_path), "KEY": str(cert.key_path)}


def test_render_fills_the_run_dir_and_every_value(tmp_path: Path) -> None:
    template = tmp_path / "x.conf.template"
    template.write_text("pid @RUN_DIR@/x.pid; listen @PORT@;\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    conf = render(template, run_dir, PORT=81)
    assert conf == run_dir / "x.conf"
    assert conf.read_text() == f"pid {run_dir}/x.pid; listen 81;\n"


def test_render_refuses_a_placeholder_left_unfilled(tmp_path: Path) -> None:
    template = tmp_path / "x.conf.template"
    template.write_text("listen @PORT@; ssl_certificate @CERT@;\n")
    with pytest.raises(BenchError, match="@CERT@"):
        render(template, tmp_path, PORT=81)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.parametrize("name", ["proxy.conf.template", "proxy-tls.conf.template", "proxy-h2c.conf.template",
                                  "upstream.conf.template"])
def test_nginx_accepts_each_rendered_template(tmp_path: Path, name: str) -> None:
    conf = render(NGINX_TEMPLATES / name, tmp_path, **_values(tmp_path))
    (tmp_path / f"{conf.stem}-temp").mkdir()
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(not Path(CADDY).is_file(), reason="caddy is not installed")
@pytest.mark.parametrize("name", ["Caddyfile.template", "Caddyfile-tls.template"])
def test_caddy_accepts_each_rendered_template(tmp_path: Path, name: str) -> None:
    conf = render(CADDY_TEMPLATES / name, tmp_path, **_values(tmp_path))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    checked = subprocess.run([CADDY, "validate", "--config", str(conf), "--adapter", "caddyfile"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_caddy_templates_turn_off_the_admin_api_and_keep_to_loopback() -> None:
    for name in ("Caddyfile.template", "Caddyfile-tls.template"):
        text = (CADDY_TEMPLATES / name).read_text()
        assert "admin off" in text and "bind 127.0.0.1" in text
