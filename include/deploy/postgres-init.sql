-- The pack's own database, beside Airflow's metadata DB, on the compose `postgres`.
--
-- Run once by the postgres image when its data volume is empty
-- (/docker-entrypoint-initdb.d), with psql, as the superuser of POSTGRES_USER.
-- The store's password comes from the container's AUXENG_DB_PASSWORD
-- (docker-compose.yaml passes it from .env), never from this file; it must be
-- the password in AIRFLOW_CONN_AUXENG_DB. The store creates its own tables on
-- first use (see docs/operations.md, "The engagement store").
--
-- Changing AUXENG_DB_PASSWORD later does not re-run this script: also run
--   ALTER ROLE auxeng PASSWORD '...';
-- in the postgres container (docker compose exec postgres psql -U airflow).

\set ON_ERROR_STOP on
\getenv auxeng_db_password AUXENG_DB_PASSWORD
\if :{?auxeng_db_password}
\else
  \warn 'AUXENG_DB_PASSWORD is not set in the postgres container: cannot create the auxeng role'
  SELECT 1/0 AS auxeng_db_password_missing;
\endif
SELECT :'auxeng_db_password' = '' AS auxeng_db_password_empty \gset
\if :auxeng_db_password_empty
  \warn 'AUXENG_DB_PASSWORD is empty in the postgres container: refusing a role without a password'
  SELECT 1/0 AS auxeng_db_password_empty;
\endif

CREATE ROLE auxeng LOGIN PASSWORD :'auxeng_db_password';
CREATE DATABASE auxeng OWNER auxeng;
REVOKE ALL ON DATABASE auxeng FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE auxeng TO auxeng;
