"""rusta.broker: the embedded broker's messages appear whole, so a worker never reads half a message."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from kombu import Connection

from rusta.broker import Transport


def connection(folder: Path) -> Connection:
    return Connection("filesystem://localhost/", transport=Transport, transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder), "control_folder": str(folder / "control"),
        "processed_folder": str(folder / "processed"), "store_processed": False,
    })


def test_a_reader_polling_the_folder_only_ever_sees_complete_messages(tmp_path):
    (tmp_path / "control").mkdir()
    # Slow to serialise: kombu's own transport has the file under its final name, empty, all that time.
    payload = {"items": [{"n": n} for n in range(100_000)]}
    done = threading.Event()
    seen: list[bytes] = []

    def poll() -> None:
        while not done.is_set():
            for name in os.listdir(tmp_path):
                if name.endswith(".msg"):
                    try:
                        seen.append((tmp_path / name).read_bytes())
                        os.remove(tmp_path / name)
                    except FileNotFoundError:
                        pass

    reader = threading.Thread(target=poll)
    reader.start()
    with connection(tmp_path) as conn:
        channel = conn.default_channel
        for _ in range(10):
            channel._put("celery", payload)
    done.set()
    reader.join()
    seen += [(tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name.endswith(".msg")]
    assert len(seen) == 10
    assert all(json.loads(data) == payload for data in seen)


def test_a_message_put_is_the_message_got(tmp_path):
    (tmp_path / "control").mkdir()
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put({"task": "rollup"})
        assert queue.get(timeout=5).payload == {"task": "rollup"}
        queue.close()
