"""The compose PostgreSQL init script, run against a private PostgreSQL server as the official image runs it.

Each process gets its own role and database; a role reaches its own database only; the script can run twice; and
each process's real migrations run under its own role (the privileges are enough, without a superuser).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from kit import db, migrations
from tests.deploy.facts import POSTGRES_INIT, PROCESSES
from tests.support.nats import free_port

pytestmark = pytest.mark.integration


def postgres_binary(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else shutil.which(name)


class PrivatePostgres:
    """A throwaway cluster on a free port: password (scram) auth over TCP, trust on its own socket."""

    def __init__(self) -> None:
        self.initdb = postgres_binary("initdb")
        self.pg_ctl = postgres_binary("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="rehab-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser")
            try:
                import pwd

                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user")
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.dir / "data"
        self.run(self.initdb, "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8")
        self.run(self.pg_ctl, "-D", str(data), "-w", "-l", str(self.dir / "log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        try:
            self.run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"


PASSWORDS = {name: f"{name}-pw-'\"$x" for name in PROCESSES}  # quotes and $ must survive the trip


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_init_script(server: PrivatePostgres) -> None:
    env = {**os.environ, "POSTGRES_USER": "postgres", "PGHOST": str(server.dir), "PGPORT": str(server.port)}
    env |= {f"{name.upper()}_DB_PASSWORD": password for name, password in PASSWORDS.items()}
    subprocess.run(["sh", str(POSTGRES_INIT)], env=env, check=True, capture_output=True, timeout=60)


def test_the_init_script_needs_every_password(postgres):
    env = {**os.environ, "POSTGRES_USER": "postgres", "PGHOST": str(postgres.dir), "PGPORT": str(postgres.port)}
    result = subprocess.run(["sh", str(POSTGRES_INIT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "INTAKE_DB_PASSWORD" in result.stderr


def test_each_process_gets_its_own_database_and_reaches_no_other(postgres):
    run_init_script(postgres)
    run_init_script(postgres)  # again: nothing breaks, nothing is duplicated
    for name, password in PASSWORDS.items():
        engine = db.make_engine(postgres.url(name, password, name))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user, current_database()")).one() == (name, name)
            assert conn.execute(text("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                                     "WHERE rolname = current_user")).scalar() is False
        engine.dispose()
        for other in PROCESSES:
            if other == name:
                continue
            engine = db.make_engine(postgres.url(name, password, other))
            with pytest.raises(OperationalError, match="permission denied"):
                with engine.connect():
                    pass
            engine.dispose()
    wrong = db.make_engine(postgres.url("intake", "wrong", "intake"))
    with pytest.raises(OperationalError, match="password authentication failed"):
        with wrong.connect():
            pass
    wrong.dispose()


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_process_migrates_its_database_with_its_own_role(postgres, name):
    run_init_script(postgres)
    spec = importlib.util.find_spec(PROCESSES[name].module)
    if spec is None or not (Path(spec.submodule_search_locations[0]) / "migrations").is_dir():
        pytest.skip(f"{PROCESSES[name].module} has no migrations yet")
    migrations_dir = Path(spec.submodule_search_locations[0]) / "migrations"
    engine = db.make_engine(postgres.url(name, PASSWORDS[name], name))
    try:
        migrations.upgrade(engine, migrations_dir)
        assert migrations.current_is_head(engine, migrations_dir)
    finally:
        engine.dispose()
