"""The database: engine, tables, migrations and every SQL statement; the only home of SQLAlchemy."""
