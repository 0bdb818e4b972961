#!/bin/sh
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), as its
# superuser: per service schema an owner role (owns the schema, runs its migrations) and a login
# role (its tables only, granted by the owner after each migration): docs/security.md
# "Database roles". Development passwords; production creates the roles itself.
set -eu
password="${RCM_DB_ROLE_PASSWORD:-rcm-development-role}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
REVOKE ALL ON DATABASE "$POSTGRES_DB" FROM PUBLIC;
SQL
for schema in intake coding billing payments followup workbench; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE rcm_${schema} LOGIN PASSWORD '${password}';
CREATE ROLE rcm_${schema}_owner LOGIN PASSWORD '${password}';
GRANT CONNECT, TEMPORARY ON DATABASE "$POSTGRES_DB" TO rcm_${schema}, rcm_${schema}_owner;
CREATE SCHEMA ${schema} AUTHORIZATION rcm_${schema}_owner;
SQL
done
