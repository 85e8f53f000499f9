"""The database role the application runs as, on PostgreSQL: everything it needs, and on audit_log only SELECT
and INSERT, so that even a compromised server process cannot change or remove audit records.

Migrations run as the owner of the tables (`tslcd db upgrade` with the owner's URL); `tslcd db grant ROLE` then
gives ROLE its rights, and the server runs with ROLE in TSLCD_DATABASE_URL. Only the owner can disable the
append-only triggers, and the application is not the owner.
"""

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tslcd.core.errors import DomainValidationError, NotFound

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def grant_app_role(connection: Connection, role: str) -> list[str]:
    """Grant `role` the application's rights (returns the statements run)."""
    if connection.dialect.name != "postgresql":
        raise DomainValidationError("database roles exist on PostgreSQL only; on SQLite the triggers keep "
                                    "audit_log append-only")
    if not _ROLE.match(role):
        raise DomainValidationError(f"'{role}' is not a plain role name (letters, digits, _; at most 63)")
    found = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if found is None:
        raise NotFound(f"no database role '{role}' (CREATE ROLE {role} LOGIN PASSWORD '…' first)")
    if found[0]:
        raise DomainValidationError(f"role '{role}' is a superuser: it could disable the audit triggers")
    owner = connection.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
                                    "AND tablename = 'audit_log'")).scalar()
    if owner is None:
        raise NotFound("no audit_log table here: run `tslcd db upgrade` first")
    if connection.execute(text("SELECT pg_has_role(:r, :o, 'USAGE')"), {"r": role, "o": owner}).scalar():
        raise DomainValidationError(f"role '{role}' owns audit_log or acts as its owner '{owner}': the application "
                                    "must run as another role")
    q = connection.dialect.identifier_preparer.quote
    r = q(role)
    database = q(connection.execute(text("SELECT current_database()")).scalar())
    schema = q(connection.execute(text("SELECT current_schema()")).scalar())
    statements = [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {r}",
        f"GRANT USAGE ON SCHEMA {schema} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {r}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
        f"REVOKE ALL ON audit_log FROM {r}",
        f"GRANT SELECT, INSERT ON audit_log TO {r}",
        f"REVOKE ALL ON audit_log FROM PUBLIC",
    ]
    if connection.execute(text("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
                               "AND tablename = 'alembic_version'")).first():
        statements += [f"REVOKE ALL ON alembic_version FROM {r}", f"GRANT SELECT ON alembic_version TO {r}"]
    # Telemetry creates and drops partitions at run time, which only the owner of a partitioned table may do:
    # the application owns those tables (and their partitions), never audit_log.
    partitioned = connection.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND (c.relkind = 'p' OR c.relispartition) ORDER BY c.relname")).scalars()
    statements += [f"ALTER TABLE {q(name)} OWNER TO {r}" for name in partitioned]
    statements.append(f"GRANT CREATE ON SCHEMA {schema} TO {r}")  # for new partitions
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements
