"""Tests of bench/rusta.py: a Rusta run that needs a piece of issue 17 the checkout lacks is skipped, with why."""
from __future__ import annotations

from pathlib import Path

from bench.rusta import missing_capability
from bench.scenarios import Context, rusta_grpc, rusta_h2, rusta_h2c, rusta_one_route, rusta_tls

CTX = Context(upstream_port=9101, grpc_port=9105)


def _checkout(root: Path, *, tls_port: bool = False, certificates: bool = False, h2: bool = False,
              grpc: bool = False) -> Path:
    files = {
        "rusta/management/commands/runproxy.py": '"--tls-port"' if tls_port else '"--port"',
        "routes/management/commands/importconfig.py": "",
        "routes/api/urls.py": 'router.register("certificates", ...)' if certificates else "",
        "protocols/http/listener.py": "import h2.connection\n" if h2 else "import httptools\n",
        "routes/schema.py": '("grpc", "gRPC")' if grpc else '("http", "HTTP")',
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if grpc:
        (root / "protocols" / "grpc").mkdir()
    return root


def test_the_plain_route_runs_on_any_checkout_with_runproxy(tmp_path: Path) -> None:
    assert missing_capability(rusta_one_route(CTX), _checkout(tmp_path)) is None


def test_without_runproxy_every_rusta_run_is_skipped(tmp_path: Path) -> None:
    assert "runproxy.py" in str(missing_capability(rusta_one_route(CTX), tmp_path))


def test_tls_runs_wait_for_the_tls_port_then_for_the_certificates_api(tmp_path: Path) -> None:
    assert "--tls-port" in str(missing_capability(rusta_tls(CTX), _checkout(tmp_path)))
    assert "/api/certificates/" in str(missing_capability(rusta_tls(CTX), _checkout(tmp_path, tls_port=True)))
    assert missing_capability(rusta_tls(CTX), _checkout(tmp_path, tls_port=True, certificates=True)) is None


def test_http2_runs_wait_for_a_listener_that_imports_h2(tmp_path: Path) -> None:
    assert "HTTP/2" in str(missing_capability(rusta_h2c(CTX), _checkout(tmp_path)))
    assert missing_capability(rusta_h2c(CTX), _checkout(tmp_path, h2=True)) is None


def test_h2_over_tls_needs_both_tls_and_http2(tmp_path: Path) -> None:
    root = _checkout(tmp_path, tls_port=True, certificates=True)
    assert "HTTP/2" in str(missing_capability(rusta_h2(CTX), root))
    assert missing_capability(rusta_h2(CTX), _checkout(root, tls_port=True, certificates=True, h2=True)) is None


def test_the_grpc_run_waits_for_http2_and_grpc_routes(tmp_path: Path) -> None:
    assert "HTTP/2" in str(missing_capability(rusta_grpc(CTX), _checkout(tmp_path)))
    assert "grpc" in str(missing_capability(rusta_grpc(CTX), _checkout(tmp_path, h2=True)))
    assert missing_capability(rusta_grpc(CTX), _checkout(tmp_path, h2=True, grpc=True)) is None
