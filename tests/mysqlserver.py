"""A throwaway MariaDB/MySQL server for one test session, when no server is named.

pytest-mysql's executor does the work: it initialises a data directory (``mariadb-install-db``
for MariaDB, ``mysqld --initialize-insecure`` for MySQL), starts the server through
``mysqld_safe`` on a free TCP port and its own unix socket, waits until both answer, and shuts
it down with ``mysqladmin`` (then kills its process group). Everything lives in one temporary
directory; the data directory is removed afterwards.

The server reads no option file: each program is called through a small shim that puts
``--no-defaults`` first (it must be the first argument, and pytest-mysql puts its own first).
Otherwise a machine's ``/etc/mysql/my.cnf`` leaks in; a ``user = mysql`` there, for one, wins
over ``--user`` and leaves a server started by root unable to write its data directory.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for
import pymysql
from mirakuru.exceptions import ExecutorError
from pytest_mysql.exceptions import PytestMySQLException
from pytest_mysql.executor import MySQLExecutor

# Each program's names, MariaDB's first (Debian installs both; MySQL only the second).
NAMES = {
    "mysqld": ("mariadbd", "mysqld"),
    "mysqld_safe": ("mariadbd-safe", "mysqld_safe"),
    "admin": ("mariadb-admin", "mysqladmin"),
    "install_db": ("mariadb-install-db", "mysql_install_db"),
}
# The server lives in sbin, often not on an ordinary user's PATH.
EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec")
MISSING = (
    "MariaDB/MySQL tests need a server: install MariaDB (apt-get install mariadb-server) and "
    "the tests start a throwaway one, or set ISLANDBOT_TEST_MYSQL_URL to use a running one "
    "(e.g. mysql+pymysql://root@127.0.0.1:3306/test)"
)
# Like the CI server's configuration; tests create their databases as utf8mb4_bin anyway.
SERVER_PARAMS = (
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
)
HOST = "127.0.0.1"
START_TIMEOUT = 30  # seconds until the server answers; it takes about one


@dataclass(frozen=True)
class Binaries:
    mysqld: Path
    mysqld_safe: Path
    admin: Path
    install_db: Path | None  # MySQL 5.7.6+ initialises with mysqld itself


def find_binaries(path: str | None = None) -> Binaries | None:
    """The server's programs on ``path`` (default ``$PATH``) or in sbin; None when any is missing.

    ``install_db`` may be missing: MySQL no longer ships it (MariaDB does, with its server).
    """
    search = os.pathsep.join(
        [path if path is not None else os.environ.get("PATH", ""), *EXTRA_DIRS]
    )

    def which(program: str) -> Path | None:
        for name in NAMES[program]:
            found = shutil.which(name, path=search)
            if found is not None:
                return Path(found)
        return None

    mysqld, mysqld_safe, admin = which("mysqld"), which("mysqld_safe"), which("admin")
    if mysqld is None or mysqld_safe is None or admin is None:
        return None
    return Binaries(mysqld, mysqld_safe, admin, which("install_db"))


def _no_defaults_shim(program: Path, shim: Path, *extra: str) -> Path:
    args = " ".join(shlex.quote(arg) for arg in (str(program), "--no-defaults", *extra))
    shim.write_text(f'#!/bin/sh\nexec {args} "$@"\n')
    shim.chmod(0o755)
    return shim


def _open_root_to_tcp(socket: str) -> None:
    """Let root in from 127.0.0.1 with no password (MariaDB's install gives that already)."""
    conn = pymysql.connect(unix_socket=socket, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS 'root'@'{HOST}'")
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'{HOST}' WITH GRANT OPTION")
    finally:
        conn.close()


class ServerDidNotStart(RuntimeError):
    pass


@contextmanager
def throwaway_server(binaries: Binaries, directory: Path) -> Iterator[str]:
    """Run a fresh server in ``directory`` (empty, short path) and yield its base URL.

    The URL names no database: root at 127.0.0.1 on a free port, no password. The server is
    stopped and its data removed on exit; its log stays as ``directory/server.log``.
    """
    shims = directory / "bin"
    shims.mkdir()
    install_db = None
    if binaries.install_db is not None:
        # Root with no password (not only by unix socket), and no anonymous `test` database.
        install_db = _no_defaults_shim(
            binaries.install_db,
            shims / "install_db",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        )
    port = port_for.select_random()
    log = directory / "server.log"
    executor = MySQLExecutor(
        mysqld_safe=_no_defaults_shim(binaries.mysqld_safe, shims / "mysqld_safe"),
        mysqld=_no_defaults_shim(binaries.mysqld, shims / "mysqld"),
        admin_exec=str(_no_defaults_shim(binaries.admin, shims / "admin")),
        logfile_path=str(log),
        params=" ".join(SERVER_PARAMS),
        base_directory=directory,
        user=getpass.getuser(),  # the server runs as whoever runs the tests, root included
        host=HOST,
        port=port,
        timeout=START_TIMEOUT,
        install_db=None if install_db is None else str(install_db),
    )
    try:
        executor.start()
    except (ExecutorError, PytestMySQLException, subprocess.CalledProcessError, OSError) as exc:
        executor.kill()
        text = log.read_text(errors="replace") if log.exists() else ""
        if isinstance(exc, subprocess.CalledProcessError) and exc.output:  # install_db's
            text += exc.output.decode(errors="replace")
        raise ServerDidNotStart(
            f"the throwaway MariaDB/MySQL server in {directory} did not start: {exc}\n"
            f"its log ends:\n{text[-3000:] or '(nothing)'}"
        ) from exc
    try:
        _open_root_to_tcp(executor.unixsocket)
        yield f"mysql+pymysql://root@{HOST}:{port}/"
    finally:
        try:
            executor.stop()  # mysqladmin shutdown, then the process group
        finally:
            executor.kill()  # whatever a failed shutdown left running
            shutil.rmtree(executor.datadir, ignore_errors=True)
