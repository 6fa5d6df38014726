"""A PostgreSQL cluster for team mode (Debian's ``postgresql`` package), on 127.0.0.1 only.

``initdb`` once into a data directory (password authentication, a generated password kept
beside it, created with mode 0600), then ``postgres`` on a loopback port without a Unix socket.
PostgreSQL refuses to run as root: as root it runs as the ``postgres`` user (or ``nobody``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serac.team.ports import LOOPBACK, port_open, wait_until
from serac.team.private_files import write_private
from serac.team.processes import Service, spawn

SUPERUSER = "serac"
PASSWORD_FILE = "password"
BINARIES = ("initdb", "postgres")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing (and were not, or could not be, installed)."""


@dataclass(frozen=True)
class PostgresCluster:
    data_dir: Path
    port: int
    password: str
    service: Service

    def uri(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}:{self.password}@{LOOPBACK}:{self.port}/{database}"


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: on PATH, else Debian's newest /usr/lib/postgresql/<v>/bin."""
    on_path = [shutil.which(b) for b in BINARIES]
    if all(on_path):
        return Path(on_path[0]).parent  # type: ignore[arg-type]
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def ensure_binaries(install: bool) -> Path:
    """The binaries' directory; with ``install`` (and root) ``apt-get install postgresql`` when they are missing."""
    found = find_bin_dir()
    if found is not None:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], check=True, env=env,
                       timeout=900)
        found = find_bin_dir()
        if found is not None:
            return found
    raise PostgresUnavailable(
        "PostgreSQL binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: "
        "install Debian's package (apt-get install postgresql) or pass --install-postgres as root"
    )


def service_user() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root; None otherwise (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


def init_cluster(bin_dir: Path, data_dir: Path, user: str | None) -> str:
    """``initdb`` into ``data_dir`` unless it already holds a cluster; returns the superuser's password."""
    secret = data_dir.parent / f".{data_dir.name}.{PASSWORD_FILE}"
    if (data_dir / "PG_VERSION").exists():
        return secret.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    write_private(secret, password + "\n")
    if user:
        _own(data_dir, user)
        _own(secret, user, mode=0o600)  # initdb reads it as that user
        _check_reachable(data_dir, user)
    as_user = {"user": user, "group": _gid(user), "extra_groups": []} if user else {}
    done = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, f"--pwfile={secret}",
         "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions"],
        text=True, capture_output=True, timeout=300, **as_user,
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
    return password


def start_postgres(bin_dir: Path, data_dir: Path, port: int, log_dir: Path, *, user: str | None,
                   timeout: float = 60.0) -> PostgresCluster:
    """Start the cluster on 127.0.0.1:``port`` (no Unix socket) and wait until it accepts connections."""
    password = init_cluster(bin_dir, data_dir, user)
    command = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port), "-c", f"listen_addresses={LOOPBACK}",
               "-c", "unix_socket_directories=", "-c", "max_connections=50"]
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if user:
        log_dir.mkdir(parents=True, exist_ok=True)
    service = spawn("postgres", command, env=env, log_dir=log_dir, url=f"postgresql://{LOOPBACK}:{port}",
                    user=user, stop_signal=signal.SIGINT)  # SIGINT: fast shutdown (no waiting for clients)
    cluster = PostgresCluster(data_dir, port, password, service)
    wait_until(lambda: port_open(port) and _can_connect(cluster), timeout, "postgres", alive=service.alive)
    return cluster


def create_database(cluster: PostgresCluster, name: str) -> None:
    """``CREATE DATABASE name`` unless it exists."""
    import psycopg2

    conn = psycopg2.connect(cluster.uri("postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def _can_connect(cluster: PostgresCluster) -> bool:
    import psycopg2

    try:
        psycopg2.connect(cluster.uri("postgres"), connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def _gid(user: str | None) -> int | None:
    if user is None:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def _own(path: Path, user: str, mode: int = 0o700) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, mode)


def _check_reachable(data_dir: Path, user: str) -> None:
    """Every parent of the data directory must be searchable by ``user`` (e.g. not under a 0700 home)."""
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise PostgresUnavailable(
                f"PostgreSQL runs as {user!r}, which cannot enter {parent} (mode {oct(mode & 0o777)}): "
                "put its data directory elsewhere (e.g. --pg-data /tmp/serac-pg)"
            )
