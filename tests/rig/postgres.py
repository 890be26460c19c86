"""Private PostgreSQL for tests: a throw-away database, or a throw-away cluster.

Two shapes, because tests need two things:

* ``ThrowawayDatabase``: a fresh database on the machine's server
  (127.0.0.1:5432, trust auth), dropped afterwards.  Cheap; most tests use it.
* ``PrivateCluster``: a whole cluster made with initdb and run with pg_ctl on a
  free port.  The outage tests stop and start it mid-ingest, which must never
  be done to the machine's shared server.

Where the machine has no server running, ``ThrowawayDatabase`` falls back to a
database inside a private cluster, so the suite still runs.  initdb refuses to
run as root, so as root the cluster belongs to the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.rig.ports import free_port, wait_for_port

SERVER_DSN = os.environ.get("COLDGATE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version_dir in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        candidate = version_dir / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"{name} not found: apt-get install postgresql (.ci/run does)")


def server_available(dsn: str = SERVER_DSN) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


class PrivateCluster:
    """A cluster of our own: initdb once, then start/stop at will on a fixed port."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="coldgate-pg-"))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "run"
        self.log_path = self.base / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        try:
            self._init_cluster()
        except BaseException:
            shutil.rmtree(self.base, ignore_errors=True)  # nothing left behind when initdb fails
            raise

    def _init_cluster(self) -> None:
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
            self.user = "postgres"
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        self._run(["mkdir", "-p", str(self.socket_dir)])
        self._run(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        conf = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "fsync = off",  # a test cluster: crash-safety of PostgreSQL itself is not under test
            "max_connections = 100",
        ]
        self._run(
            ["sh", "-c", f"cat >> {self.data_dir}/postgresql.conf <<'EOF'\n" + "\n".join(conf) + "\nEOF"]
        )

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """An SQLAlchemy URL for psycopg 3."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def start(self) -> None:
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "start"])
        wait_for_port(self.host, self.port)

    def stop(self, mode: str = "fast") -> None:
        """``mode``: smart, fast or immediate (the last is a crash as far as clients can tell)."""
        self._run([_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        result = subprocess.run(
            [*self._as_user, _pg_bin("pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class ThrowawayDatabase:
    """A database with a unique name on a server, dropped on ``drop()``."""

    def __init__(
        self, server_dsn: str, url_prefix: str, *, template: ThrowawayDatabase | None = None,
        app_role: str = "coldgate_app",
    ) -> None:  # fmt: skip
        """``template``: a copy of that (migrated) database nobody is connected to, made on the server
        (0.40 s against 0.63 s for creating and migrating one, measured).  Privileges on a database
        itself are not copied, so the one the migration grants there (TEMPORARY to the app role) is
        granted again."""
        self.name = f"coldgate_test_{uuid.uuid4().hex[:12]}"
        self._server_dsn = server_dsn
        self.template = template
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            if template is None:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            else:
                conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{template.name}"')
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone():
                    conn.execute(f'GRANT TEMPORARY ON DATABASE "{self.name}" TO "{app_role}"')
        params = dict(part.split("=", 1) for part in server_dsn.split())
        params["dbname"] = self.name
        self.dsn = " ".join(f"{key}={value}" for key, value in params.items())
        self.url = f"{url_prefix}/{self.name}"

    @classmethod
    def on_server(
        cls, server_dsn: str = SERVER_DSN, *, template: ThrowawayDatabase | None = None
    ) -> ThrowawayDatabase:
        params = dict(part.split("=", 1) for part in server_dsn.split())
        prefix = (
            f"postgresql+psycopg://{params.get('user', 'postgres')}@"
            f"{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}"
        )
        return cls(server_dsn, prefix, template=template)

    @classmethod
    def in_cluster(
        cls, cluster: PrivateCluster, *, template: ThrowawayDatabase | None = None
    ) -> ThrowawayDatabase:
        url = f"postgresql+psycopg://{cluster.user}@{cluster.host}:{cluster.port}"
        return cls(cluster.dsn(), url, template=template)

    def drop(self) -> None:
        try:
            with psycopg.connect(self._server_dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except psycopg.OperationalError:
            pass  # the server is gone (a stopped private cluster): nothing left to drop
