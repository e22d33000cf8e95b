"""The throwaway MariaDB/MySQL server the session starts when no server is named."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests import mysqlserver


def make_programs(directory: Path, *names: str) -> None:
    directory.mkdir(exist_ok=True)
    for name in names:
        program = directory / name
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)


def test_finds_mariadb_programs_before_mysql_ones(tmp_path: Path) -> None:
    names = [n for pair in mysqlserver.NAMES.values() for n in pair]
    make_programs(tmp_path / "bin", *names)
    found = mysqlserver.find_binaries(str(tmp_path / "bin"))
    assert found == mysqlserver.Binaries(
        mysqld=tmp_path / "bin" / "mariadbd",
        mysqld_safe=tmp_path / "bin" / "mariadbd-safe",
        admin=tmp_path / "bin" / "mariadb-admin",
        install_db=tmp_path / "bin" / "mariadb-install-db",
    )


def test_mysql_without_install_db_is_enough(tmp_path: Path) -> None:
    make_programs(tmp_path / "bin", "mysqld", "mysqld_safe", "mysqladmin")
    found = mysqlserver.find_binaries(str(tmp_path / "bin"))
    assert found is not None
    assert found.install_db is None


def test_no_server_program_means_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mysqlserver, "EXTRA_DIRS", ())
    make_programs(tmp_path / "bin", "mariadb-admin", "mariadbd-safe")  # client only, no server
    assert mysqlserver.find_binaries(str(tmp_path / "bin")) is None
    assert "apt-get install mariadb-server" in mysqlserver.MISSING


@pytest.fixture(scope="module")
def binaries() -> mysqlserver.Binaries:
    found = mysqlserver.find_binaries()
    if found is None:
        pytest.skip(mysqlserver.MISSING)
    return found


def processes_of(directory: Path) -> list[str]:
    """Names of the processes whose command line mentions ``directory``."""
    return [
        p.info["name"]
        for p in psutil.process_iter(["name", "cmdline"])
        if any(str(directory) in arg for arg in p.info["cmdline"] or ())
    ]


@pytest.mark.mysql
def test_throwaway_server_answers_root_over_tcp_and_leaves_nothing(
    binaries: mysqlserver.Binaries, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("own-mysql")
    with mysqlserver.throwaway_server(binaries, directory) as url:
        parsed = make_url(url)
        assert parsed.host == "127.0.0.1"
        assert parsed.username == "root"
        assert parsed.password is None
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE probe")
            charset = conn.exec_driver_sql("SELECT @@character_set_server").scalar()
        engine.dispose()
        assert charset == "utf8mb4"
        assert {"mariadbd", "mysqld"} & set(processes_of(directory)), processes_of(directory)
        port = parsed.port
    assert port is not None
    assert processes_of(directory) == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not any(directory.glob("mysqldata_*")), "the data directory was left behind"
    assert (directory / "server.log").exists()


@pytest.mark.mysql
@pytest.mark.slow
def test_a_server_that_cannot_start_says_why_and_leaves_nothing(
    binaries: mysqlserver.Binaries,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mysqlserver, "SERVER_PARAMS", ("--no-such-option-at-all",))
    monkeypatch.setattr(mysqlserver, "START_TIMEOUT", 5)  # mysqld_safe outlives the server
    directory = tmp_path_factory.mktemp("bad-mysql")
    with (
        pytest.raises(
            mysqlserver.ServerDidNotStart, match="unknown option '--no-such-option-at-all'"
        ),
        mysqlserver.throwaway_server(binaries, directory),
    ):
        pass
    assert processes_of(directory) == []


@pytest.mark.mysql
def test_session_server_is_the_named_one_or_its_own(mysql_base_url: str) -> None:
    """Whichever it is, root (or the named user) can make databases there over TCP."""
    url = make_url(mysql_base_url)
    conn = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    conn.close()
