"""A throwaway PostgreSQL server for the tuning tests: a cluster of its own in a temp folder, on 127.0.0.1 only.

`make test` installs Debian's postgresql first (scripts/ensure-postgres.sh); no system service or cluster is used.
PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user the Debian package
creates (or `nobody`), and its folder belongs to that user; otherwise it runs as whoever runs the tests.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

DEBIAN_VERSIONS = Path("/usr/lib/postgresql")  # Debian's postgresql-NN packages: /usr/lib/postgresql/NN/bin
DATABASE = "optuna"
SUPERUSER = "postgres"  # initdb -U: the role the URL logs in as, whatever the user running the server
SERVER_USERS = ("postgres", "nobody")  # under root, the first that exists runs the server
START_TIMEOUT = 60  # s: pg_ctl waits this long for connections; about 1 s measured on the 2-core EPYC under load


class ServerError(RuntimeError):
    """The server could not be made or started; the message is one line saying why."""


def binaries() -> Path | None:
    """The folder of initdb, pg_ctl and createdb: PATH's initdb where there is one, else Debian's newest."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent  # a symlink such as /usr/local/bin/initdb: its real folder
    versions = sorted(DEBIAN_VERSIONS.glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def createdb(port: int, database: str) -> list[str]:
    """The README's command that makes the study's database, on this server."""
    return ["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, database]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs initdb and the server: None for the current user, an unprivileged one under root."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError(f"PostgreSQL will not run as root and there is no {' or '.join(SERVER_USERS)} user")


def _run(command: list, user: pwd.struct_passwd | None, cwd: Path) -> None:
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT, **as_user)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines() or [f"exit status {done.returncode}"]
        raise ServerError(f"{Path(command[0]).name} failed: {said[-1]}")


def _why(log: Path) -> str | None:
    """The server log's first error (its last lines only say it shut down), without its time and process."""
    lines = log.read_text().splitlines() if log.exists() else []
    errors = [line for line in lines if any(level in line for level in ("FATAL:", "ERROR:", "PANIC:"))] or lines
    return errors[0].split("] ", 1)[-1] if errors else None  # after "2026-12-02 04:18:43.927 UTC [29385] "


@contextlib.contextmanager
def server(database: str = DATABASE) -> Iterator[str]:
    """Start a new cluster, create ``database``, yield its URL; always stop the server and remove the folder."""
    bindir = binaries()
    if bindir is None:
        raise ServerError(
            "initdb and pg_ctl are not installed: run `make test` (it installs Debian's postgresql) "
            "or apt-get install postgresql"
        )
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="digitocr-postgres-"))  # 0700: the server's socket and data only
    data, port = folder / "data", free_port()
    try:
        if user:
            os.chown(folder, user.pw_uid, user.pw_gid)
        # trust: any local connection logs in as any role, which is what a throwaway server for one test run wants.
        # --no-sync and fsync=off: nothing here has to survive a crash of the machine.
        _run([bindir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "--no-sync"], user, folder)
        # Only 127.0.0.1, on a port nobody else has, the socket in our folder: nothing of the machine's is touched.
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -k {folder} -c fsync=off"
        start = [bindir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-o", options, "-w"]
        try:
            _run([*start, "-t", str(START_TIMEOUT), "start"], user, folder)
        except ServerError as error:
            raise ServerError(f"PostgreSQL did not start: {_why(folder / 'server.log') or error}") from None
        try:
            program, *arguments = createdb(port, database)
            _run([bindir / program, *arguments], user, folder)
            yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"
        finally:
            _run([bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], user, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":  # scripts/ensure-postgres.sh: exit 0 when the server's programs are there
    raise SystemExit(binaries() is None)
