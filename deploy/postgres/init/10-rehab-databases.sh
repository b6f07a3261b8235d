#!/bin/sh
# One database and one role per process, each role owning only its own database (docker-compose PostgreSQL).
#
# Run once by the official postgres image when its data volume is empty (/docker-entrypoint-initdb.d), as the
# superuser, with the passwords from the environment. Safe to run again by hand: what exists is left alone,
# except that each role's password is set again from the environment (how to rotate one, see deploy/README.md):
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-rehab-databases.sh
#
# The role of one service can not connect to another service's database: CONNECT is revoked from PUBLIC and
# granted only to the owner. Passwords go through psql variables (:'password'), so they are quoted by psql and never
# spliced into SQL text by the shell.
set -e

create_database() {
    name="$1"
    password="$2"
    psql --quiet -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'name', :'name', 'UTF8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
}

create_database intake "${INTAKE_DB_PASSWORD:?INTAKE_DB_PASSWORD is not set}"
create_database referrals "${REFERRALS_DB_PASSWORD:?REFERRALS_DB_PASSWORD is not set}"
create_database funds "${FUNDS_DB_PASSWORD:?FUNDS_DB_PASSWORD is not set}"
create_database reports "${REPORTS_DB_PASSWORD:?REPORTS_DB_PASSWORD is not set}"
create_database gateway "${GATEWAY_DB_PASSWORD:?GATEWAY_DB_PASSWORD is not set}"
