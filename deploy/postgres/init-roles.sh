#!/bin/sh
# The shard databases' roles, least privilege. The postgres image runs it once, on the first
# start of an empty data directory (/docker-entrypoint-initdb.d); on a shard made before it,
# run it by hand (README "Deployment"). Safe to run again: passwords and grants are set anew.
#   ledger_owner   owns the database and its tables: `transfers db upgrade` (the migrations)
#   ledger_worker  SELECT, INSERT on the tables ledger_owner creates, USAGE on its sequences;
#                  UPDATE only where a migration grants it (0004: accounts, holds), and
#                  alembic_version read-only. No DELETE, no DDL, no temporary tables, and no
#                  EXECUTE on functions the owner creates unless granted.
# Neither is a superuser: no COPY ... PROGRAM, no server files. PUBLIC may not connect to any
# other database of the server. Passwords come from the files LEDGER_OWNER_PASSWORD_FILE and
# LEDGER_WORKER_PASSWORD_FILE (Compose secrets); psql connects as POSTGRES_USER to POSTGRES_DB
# (and reads PGHOST, PGPORT, PGPASSWORD as libpq does).
: "${POSTGRES_USER:?}" "${POSTGRES_DB:?}"
for file in "${LEDGER_OWNER_PASSWORD_FILE:?}" "${LEDGER_WORKER_PASSWORD_FILE:?}"; do
    [ -s "$file" ] || { echo "init-roles: $file is missing or empty" >&2; exit 1; }
done

psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
    --dbname "$POSTGRES_DB" <<'SQL'
\getenv owner_password_file LEDGER_OWNER_PASSWORD_FILE
\getenv worker_password_file LEDGER_WORKER_PASSWORD_FILE
-- read by psql itself: the passwords appear in no command line
\set owner_password `cat :'owner_password_file'`
\set worker_password `cat :'worker_password_file'`

SELECT format('CREATE ROLE %I', name) FROM unnest(ARRAY['ledger_owner', 'ledger_worker']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
ALTER ROLE ledger_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'owner_password';
ALTER ROLE ledger_worker WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'worker_password';

-- This database: the owner owns it and so (pg_database_owner) its public schema, where the
-- migrations create the tables; the worker may connect, and nothing else.
SELECT format('ALTER DATABASE %I OWNER TO ledger_owner', current_database()) \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO ledger_worker', current_database()) \gexec
-- Every other database: no connection, no temporary tables, for anyone but a superuser.
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)
FROM pg_database WHERE datname <> current_database() \gexec

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ledger_worker;
-- Tables made before these roles existed (a shard migrated as the superuser) change hands.
SELECT format('ALTER TABLE public.%I OWNER TO ledger_owner', tablename)
FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'ledger_owner' \gexec
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO ledger_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ledger_worker;
-- the schema version is the migrations' own (it exists here on a shard migrated before)
SELECT 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.alembic_version FROM ledger_worker'
WHERE to_regclass('public.alembic_version') IS NOT NULL \gexec
-- and every table and sequence (a serial column) a later migration creates (expand, then
-- contract: README "Deployment"); UPDATE on a table is granted by the migration that needs it
ALTER DEFAULT PRIVILEGES FOR ROLE ledger_owner IN SCHEMA public
    REVOKE ALL ON TABLES FROM ledger_worker;  -- a wider default an earlier script gave
ALTER DEFAULT PRIVILEGES FOR ROLE ledger_owner IN SCHEMA public
    GRANT SELECT, INSERT ON TABLES TO ledger_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE ledger_owner IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO ledger_worker;
-- PostgreSQL lets PUBLIC execute every new function; not the owner's (a SECURITY DEFINER
-- function would run with the owner's rights)
ALTER DEFAULT PRIVILEGES FOR ROLE ledger_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
SQL
