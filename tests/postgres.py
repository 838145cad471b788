"""A throwaway PostgreSQL server from the distribution's binaries, for the store tests and benchmark.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user (or
``nobody``) through ``runuser``, in a temporary folder handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port

SUPERUSER = "infersight"


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix, uid and gid to run the server with: ourselves, or an unprivileged user as root."""
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
    raise RuntimeError("running as root and neither the postgres nor the nobody user exists")


class LocalPostgres:
    """One server in a temporary folder; fault tests stop and start it again under the writers' feet."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable`` keeps PostgreSQL's fsync; tests turn it off because they throw the data away."""
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError(
                "no PostgreSQL server binaries (apt install postgresql) and no $INFERSIGHT_TEST_POSTGRES_URL"
            )
        self.bin_dir = bin_dir
        self.prefix, uid, gid = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="infersight-pg-"))
        self.data = self.root / "data"
        if uid is not None and gid is not None:
            os.chown(self.root, uid, gid)
        self.port = free_port()
        self.options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not durable:
            self.options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self.url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [*self.prefix, str(self.bin_dir / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode:
            log = self.root / "server.log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr.strip()}\n{detail}")

    def start(self) -> None:
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", self.options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects clients and shuts down cleanly; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def local_postgres(*, durable: bool = False) -> Iterator[str]:
    """Start a server on a free port and yield its URL; stop it and delete its files afterwards."""
    server = LocalPostgres(durable=durable)
    try:
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        server.remove()


def create_database(server_url: str, name: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)
