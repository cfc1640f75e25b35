"""A throwaway PostgreSQL cluster: initdb in a private directory, unix socket only.

No system service is touched and no TCP port is opened.  PostgreSQL refuses to run
as root, so when the rig runs as root (CI) the server runs as the `postgres` user
that Debian's package creates, in a directory handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rig.paths import PartMissing, rig_paths


def _run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise PartMissing("running as root needs the 'postgres' system user (Debian package postgresql)") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@dataclass
class PgCluster:
    base: Path
    bindir: Path
    port: int = 5432  # names the socket file only; TCP is off
    superuser: str = "postgres"
    _started: bool = field(default=False, init=False)

    @classmethod
    def create(cls, base: Path | None = None) -> PgCluster:
        bindir = rig_paths().need("pg_bindir")
        if base is None:
            # Under /tmp so the postgres user can traverse to it when we are root.
            base = Path(tempfile.mkdtemp(prefix="ai-sysadmin-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        cluster = cls(base=base, bindir=bindir)
        if not (cluster.datadir / "PG_VERSION").exists():
            cluster._initdb()
        return cluster

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "sock"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def chown(self, path: Path) -> None:
        """Hand `path` to the user the server runs as (when the rig runs as root)."""
        ids = _run_as()
        if ids:
            os.chown(path, ids["user"], ids["group"])

    def _pg(self, prog: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bindir / prog), *args], capture_output=True, text=True, check=check, cwd="/", **_run_as()
        )

    def _initdb(self) -> None:
        for d in (self.base, self.datadir, self.sockdir):
            d.mkdir(exist_ok=True)
            self.chown(d)
        self.datadir.chmod(0o700)
        self._pg(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            self.superuser,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
            "--no-sync",
        )
        conf = (
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{self.sockdir}'\n"
            f"port = {self.port}\n"
            # A test cluster: durability against an OS crash is not what we test.
            "fsync = off\nfull_page_writes = off\n"
            "max_connections = 100\nshared_buffers = 64MB\n"
        )
        with open(self.datadir / "postgresql.auto.conf", "a") as f:
            f.write(conf)

    def start(self) -> PgCluster:
        if not self.logfile.exists():
            self.logfile.touch()
            self.chown(self.logfile)
        r = self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir), "-l", str(self.logfile), check=False)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()}\n{self.logfile.read_text()[-2000:]}")
        self._started = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` simulates a crash)."""
        if (self.datadir / "postmaster.pid").exists():
            self._pg("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir), check=False)
        self._started = False

    def running(self) -> bool:
        return self._pg("pg_ctl", "status", "-D", str(self.datadir), check=False).returncode == 0

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.sockdir} port={self.port} user={self.superuser} dbname={dbname}"

    def database_config(self, dbname: str) -> dict:
        """The `database` section of an ai-sysadmin config pointing at this cluster."""
        return {"socket_dir": str(self.sockdir), "port": self.port, "user": self.superuser, "name": dbname}

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
