"""The embedded default's Celery broker: kombu's filesystem transport, with each message written atomically.

kombu creates a message file under its final name and only then writes it, so a worker polling the folder can
take the file while it is still empty; the JSON error that follows stops the worker ("Unrecoverable error"),
and with it the gateway's background work. Here a message is written under a name the worker skips and then
renamed into place (`os.replace` is atomic within a folder), so a worker sees whole messages or none.
"""
from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu's own classes disagree on the second parameter's name (AbstractChannel: message); this is filesystem's.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put `payload` onto `queue`: written under a dot-name, then renamed to the name workers read."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # kombu's _get takes files whose name after the first dot is "<queue>.msg": ".<name>.part" is never one.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
