"""Migrations produce exactly the models' schema, upgrade from empty and downgrade cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.infra.storage import migrate
from bot.infra.storage.database import Database, create_database
from bot.infra.storage.tables import Base, OutboxMessage
from tests import dbutil
from tests.infra.storage.test_allocation import make_allocator, req
from tests.infra.storage.test_outbox import ids, queue


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all, on each backend."""
    if request.param == "sqlite":
        db = create_database(dbutil.sqlite_url(tmp_path))
        yield db
        db.dispose()
        return
    base = str(request.getfixturevalue("mysql_base_url"))
    with dbutil.scratch_mysql_database(base) as url:
        db = create_database(url)
        yield db
        db.dispose()


def differences(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_from_empty_matches_the_models_exactly(empty_db: Database) -> None:
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert differences(empty_db) == []
    assert tables(empty_db) == set(Base.metadata.tables) | {"alembic_version"}


def test_downgrade_to_base_and_up_again(empty_db: Database) -> None:
    migrate.upgrade(empty_db)
    migrate.downgrade(empty_db, "base")
    assert tables(empty_db) == {"alembic_version"}
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    assert differences(empty_db) == []


def test_the_layout_row_exists_after_upgrade(empty_db: Database) -> None:
    migrate.upgrade(empty_db)
    with empty_db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM port_layout").scalars().all() == [1]


def test_ensure_current_upgrades_only_when_behind(empty_db: Database) -> None:
    assert migrate.ensure_current(empty_db) is True
    assert migrate.ensure_current(empty_db) is False


def test_outbox_rebuilt_for_never_reused_ids_keeps_its_notices(empty_db: Database) -> None:
    migrate.upgrade(empty_db, "0009")  # before outbox ids were kept from being reused (SQLite)
    island_id = make_allocator(empty_db).allocate(req()).island_id
    old = queue(empty_db, island_id, 3)
    everything = sa.text("SELECT * FROM outbox ORDER BY id")  # the columns of the revision
    with empty_db.engine.connect() as conn:
        before = [dict(r) for r in conn.execute(everything).mappings()]
    migrate.upgrade(empty_db)
    assert differences(empty_db) == []
    with empty_db.engine.begin() as conn:
        after = [{k: r[k] for k in before[0]} for r in conn.execute(everything).mappings()]
        assert after == before
        conn.execute(sa.delete(OutboxMessage))  # housekeeping forgot them all
    assert min(queue(empty_db, island_id, 1)) > max(old)
    migrate.downgrade(empty_db, "0009")
    assert ids(empty_db) == [max(old) + 1]
    migrate.upgrade(empty_db)
    assert differences(empty_db) == []


@pytest.mark.mysql
def test_mysql_tables_are_utf8mb4_binary_innodb(mysql_base_url: str) -> None:
    with dbutil.scratch_mysql_database(mysql_base_url) as url:
        db = dbutil.migrated(url)
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT table_name, engine, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name != 'alembic_version'"
            ).all()
        db.dispose()
    assert len(rows) == len(Base.metadata.tables)
    assert {(r[1], r[2]) for r in rows} == {("InnoDB", "utf8mb4_bin")}


@pytest.mark.mysql
def test_replicas_starting_together_migrate_once(mysql_base_url: str) -> None:
    with dbutil.scratch_mysql_database(mysql_base_url) as url:
        dbs = [create_database(url) for _ in range(3)]
        errors: list[BaseException] = []

        def start(db: Database) -> None:
            try:
                migrate.ensure_current(db)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert differences(dbs[0]) == []
        for db in dbs:
            db.dispose()


def test_outbox_keeps_never_reused_ids_through_later_migrations_both_ways(
    empty_db: Database,
) -> None:
    """SQLite rebuilds a table to drop a column; a rebuild that forgot AUTOINCREMENT would let
    outbox ids repeat again (keys ``outbox-{id}``) with nothing else showing it."""
    if empty_db.dialect != "sqlite":
        pytest.skip("AUTOINCREMENT is SQLite's; MySQL's counter never goes back")

    def autoincrement() -> bool:
        with empty_db.engine.connect() as conn:
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"
            ).scalar_one()
        return "AUTOINCREMENT" in str(sql).upper()

    migrate.upgrade(empty_db)
    assert autoincrement()
    migrate.downgrade(empty_db, "0010")
    assert autoincrement()
    migrate.upgrade(empty_db)
    assert autoincrement()


LARK_OWNER = "ou_7d8a6e6df7621556ce0d21922b676706"  # 35 characters, as Lark's open_ids are


def _island_rows(db: Database) -> list[dict[str, object]]:
    query = sa.text("SELECT id, owner_id, chat_channel, chat_thread FROM islands ORDER BY id")
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def test_chat_ids_widen_for_lark_and_going_back_is_refused_while_one_is_kept(
    empty_db: Database,
) -> None:
    migrate.upgrade(empty_db, "0016")
    slack_island = make_allocator(empty_db).allocate(req()).island_id  # a Slack-sized id
    migrate.upgrade(empty_db)  # 0017 rebuilds islands (SQLite) with its rows and port blocks
    assert differences(empty_db) == []
    migrate.downgrade(empty_db, "0016")  # Slack's ids alone: back and forth
    migrate.upgrade(empty_db)
    lark_island = make_allocator(empty_db).allocate(req(LARK_OWNER)).island_id
    with empty_db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE islands SET chat_channel = :c, chat_thread = :t WHERE id = :i"),
            {"c": "oc_" + "a" * 32, "t": "om_" + "b" * 32, "i": lark_island},
        )
    before = _island_rows(empty_db)
    assert [r["id"] for r in before] == [slack_island, lark_island]
    with pytest.raises(Exception, match=r"islands\.owner_id \(1 rows\)"):
        migrate.downgrade(empty_db, "0016")
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert _island_rows(empty_db) == before  # nothing changed
    assert differences(empty_db) == []
