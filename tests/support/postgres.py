"""Fresh PostgreSQL databases for tests, made from an admin URL such as postgresql+psycopg://postgres@127.0.0.1/test."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _admin_engine(admin_url: str):  # noqa: ANN202
    return create_engine(admin_url, isolation_level="AUTOCOMMIT")


def create_database(admin_url: str, name: str) -> str:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
