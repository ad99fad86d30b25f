"""A throwaway PostgreSQL server for tests: initdb into a temporary directory, start it on a
free loopback port (and a private unix socket), hand out fresh databases, stop and delete it.

Runs as the current user, or, when that is root (initdb refuses root), as the ``postgres``
user through ``runuser``. The binaries come from ``$PG_BINDIR``, the newest
``/usr/lib/postgresql/*/bin`` or ``pg_ctl`` on the PATH; without them ``start()`` raises
``PgUnavailable`` with a message that says what to install (the tests fail, never skip).

The server trusts connections on its own unix socket (the superuser ``postgres`` uses it
to create databases and to play the attacker) and asks for a SCRAM password over TCP,
which is how the CLI under test connects.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

SERVICE_USER = "postgres"
APP_USER = "skills"
# Characters that need percent-encoding in a URL: parsing and redaction are exercised too.
APP_PASSWORD = "s3cret:p@ss/w%rd"
SUPERUSER_PASSWORD = "superuser-not-used-over-tcp"


class PgUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    candidates.extend(reversed(versions))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(str(Path(pg_ctl).resolve().parent))
    for c in candidates:
        if all((Path(c) / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return Path(c)
    raise PgUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $PG_BINDIR, "
        "/usr/lib/postgresql/*/bin or on the PATH: install them (Debian: apt-get install postgresql) "
        "to run the PostgreSQL journal tests")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, root: Path, bindir: Path, port: int, as_user: str | None) -> None:
        self.root = root
        self.bindir = bindir
        self.port = port
        self.as_user = as_user
        self.data = root / "data"
        self.socket_dir = root / "sock"
        self.log = root / "server.log"
        self._databases = 0

    # --- running the server's programs -------------------------------------------------

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(self.root))
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgUnavailable(f"{' '.join(args[:1])} failed (exit {proc.returncode}): {proc.stderr.strip()}\n{log}")
        return proc

    def init_and_start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        self.socket_dir.mkdir()
        if self.as_user:
            entry = pwd.getpwnam(self.as_user)
            for p in (self.root, pwfile, self.socket_dir):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SERVICE_USER, "--pwfile", str(pwfile), "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-sync", "--encoding=UTF8", "--locale=C")
        settings = {
            "port": str(self.port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.socket_dir),
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "32MB",
            "max_connections": "100",
        }
        options = " ".join(f"-c {k}={v}" for k, v in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        with self.superuser() as con:
            con.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- using it ----------------------------------------------------------------------

    def superuser(self, dbname: str = "postgres"):
        """A superuser connection over the unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=SERVICE_USER, dbname=dbname,
                               autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database owned by the application user; returns its name."""
        self._databases += 1
        name = name or f"journal_{self._databases}_{uuid.uuid4().hex[:8]}"
        with self.superuser() as con:
            con.execute(f'CREATE DATABASE "{name}" OWNER {APP_USER}')
        return name

    def url(self, dbname: str, *, password: str = APP_PASSWORD, query: str = "") -> str:
        """The journal URL the CLI is given: the application user, over TCP, with its password."""
        q = f"?{query}" if query else ""
        return f"postgresql://{APP_USER}:{quote(password, safe='')}@127.0.0.1:{self.port}/{dbname}{q}"


def start() -> PgServer:
    bindir = find_bindir()
    as_user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise PgUnavailable(f"running as root and there is no {SERVICE_USER!r} user to run initdb as") from None
        if not shutil.which("runuser"):
            raise PgUnavailable("running as root and runuser (util-linux) is missing: cannot drop to the postgres user")
        as_user = SERVICE_USER
    root = Path(tempfile.mkdtemp(prefix="skills-pg-"))
    server = PgServer(root, bindir, free_port(), as_user)
    try:
        server.init_and_start()
    except BaseException:
        server.stop()
        raise
    return server
