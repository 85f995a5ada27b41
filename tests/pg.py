"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl as the postgres user.

Contract: :func:`start_cluster` makes a fresh data directory owned by
``postgres`` (initdb refuses root), starts a server listening only on a Unix
socket in that directory, and returns a :class:`Cluster` whose ``url(db)``
creates the database on first use. :meth:`Cluster.stop` stops the server and
deletes everything. Used by ``tests/conftest.py``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    """True when initdb, pg_ctl and the postgres user exist."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@dataclass
class Cluster:
    """A running throwaway cluster."""

    root: Path
    port: int
    _dbs: set[str] = field(default_factory=set)

    def url(self, db: str = "sunflower") -> str:
        """SQLAlchemy URL of database ``db`` (created if needed)."""
        if db not in self._dbs:
            psql = _binary("psql") or "psql"
            subprocess.run(
                _as_postgres(
                    [
                        psql,
                        "-h",
                        str(self.root),
                        "-p",
                        str(self.port),
                        "-d",
                        "postgres",
                        "-qc",
                        f'CREATE DATABASE "{db}"',
                    ]
                ),
                check=True,
                capture_output=True,
            )
            self._dbs.add(db)
        return f"postgresql+psycopg://postgres@/{db}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        """Stop the server and remove its files."""
        pg_ctl = _binary("pg_ctl") or "pg_ctl"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(port: int) -> Cluster:
    """initdb and start a cluster on a Unix socket (and the given port number)."""
    root = Path(tempfile.mkdtemp(prefix="sunflower-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    subprocess.run(
        _as_postgres(
            [
                _binary("initdb") or "initdb",
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses='' -k {root} -p {port} -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres(
            [
                _binary("pg_ctl") or "pg_ctl",
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return Cluster(root, port)
