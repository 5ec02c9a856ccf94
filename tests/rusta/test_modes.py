"""The two modes: embedded default (SQLite, in-process) and scaled out (PostgreSQL + Redis)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from tests.support.gateway import ROOT

SCALED = bool(os.environ.get("REDIS_URL"))


def test_the_database_is_the_one_database_url_names():
    engine = settings.DATABASES["default"]["ENGINE"]
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith("postgres") else "sqlite3"
    assert engine.endswith(expected)


def test_the_channel_layer_carries_a_message():
    layer = get_channel_layer()

    async def round_trip() -> dict:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "config.changed", "version": 7})
        return await asyncio.wait_for(layer.receive(channel), 5)

    assert asyncio.run(round_trip())["version"] == 7
    assert type(layer).__name__ == ("RedisChannelLayer" if SCALED else "InMemoryChannelLayer")


@pytest.mark.skipif(not SCALED, reason="needs REDIS_URL (the scaled-out suite)")
def test_the_cache_is_shared_through_redis():
    import redis

    cache.set("rusta-mode-probe", "shared", 30)
    keys = redis.Redis.from_url(os.environ["REDIS_URL"]).keys("*rusta-mode-probe*")
    assert keys, "the cache value did not reach Redis"


def test_an_empty_environment_uses_sqlite_in_the_var_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["RUSTA_VAR_DIR"] = str(tmp_path)
    script = "from django.conf import settings as s; print(s.DATABASES['default']['NAME']); print(s.CACHES)"
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "rusta.sqlite3") in result.stdout.splitlines()
    assert "LocMemCache" in result.stdout
    assert (tmp_path / "secret_key").exists()


def test_an_empty_var_dir_means_the_default_not_the_current_folder(tmp_path):
    env = {**os.environ, "RUSTA_VAR_DIR": ""}
    script = "from django.conf import settings as s; print(s.VAR_DIR)"
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(ROOT / "var")
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_environment_value_stops_start_up_with_its_name(tmp_path):
    env = {**os.environ, "RUSTA_VAR_DIR": str(tmp_path), "RUSTA_RELOAD_INTERVAL": "soon"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "RUSTA_RELOAD_INTERVAL must be a number" in result.stderr
