"""Where one gateway instance keeps its own state under RUSTA_VAR_DIR: a folder named after its database."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

# The part of RUSTA_VAR_DIR that belongs to one instance (one database); see instance_dir.
INSTANCES = "instances"


def instance_name(database_url: str) -> str:
    """A folder name for the gateway instance using `database_url`: readable, and distinct per URL.

    The database's name (a SQLite file's stem, a PostgreSQL database's name) says whose folder it is; a short
    hash of the whole URL keeps apart two databases of the same name (on two servers, or in two folders).
    The URL itself is never written out: it may hold a password.
    """
    path = urlsplit(database_url).path
    name = Path(path).stem if database_url.startswith("sqlite") else path.strip("/")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "db"
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def instance_dir(var_dir: Path | str, database_url: str) -> Path:
    """The folder of the instance's own state: its metrics folder, its embedded broker and beat schedule.

    Gateways started from one checkout with different databases share RUSTA_VAR_DIR (the secret key, static
    files); each one's counters and Celery queue must not be mixed with another's.
    """
    return Path(var_dir) / INSTANCES / instance_name(database_url)
