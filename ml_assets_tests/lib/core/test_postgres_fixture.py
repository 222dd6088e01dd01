"""The PostgreSQL test server starts, listens only on 127.0.0.1 and hands out fresh databases
under both URL spellings."""

import psycopg2
import pytest
import sqlalchemy


def test_fresh_database_per_test_in_both_url_spellings(postgres_database):
    con = psycopg2.connect(postgres_database.url)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT current_database(), count(*) FROM pg_tables "
                        "WHERE schemaname='public'")
            assert cur.fetchone() == (postgres_database.name, 0)
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
    finally:
        con.close()
    assert postgres_database.sqlalchemy_url.startswith("postgresql+psycopg2://")
    engine = sqlalchemy.create_engine(postgres_database.sqlalchemy_url)
    with engine.connect() as c:
        assert c.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_wrong_password_is_refused(postgres_server):
    bad = postgres_server.url().replace(postgres_server.password, "wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(bad).close()
