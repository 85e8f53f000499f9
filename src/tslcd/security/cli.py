"""Users, tokens, the audit log and the application's database role."""

import typer

from tslcd.core.database import session_scope
from tslcd.security.actor import SYSTEM
from tslcd.security.models import Role

user_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@user_app.command("add")
def add(username: str, role: Role = typer.Option(..., help="admin, noc, partner, agency or auditor"),
        full_name: str = typer.Option(""), password: str = typer.Option(None, help="omit for token-only users"),
        operator: str = typer.Option(None, help="operator slug (role partner)"),
        agency: str = typer.Option(None, help="agency code (role agency)"),
        token: bool = typer.Option(True, help="print an API token for the new user")) -> None:
    """Create a user (and print an API token for it)."""
    from tslcd.security import bindings, service
    from tslcd.security.schemas import UserCreate

    with session_scope() as session:
        operator_id = bindings.find_id(session, "operator", operator)
        agency_id = bindings.find_id(session, "agency", agency)
        user = service.create_user(session=session, actor=SYSTEM, user_in=UserCreate(
            username=username, full_name=full_name, password=password, role=role, operator_id=operator_id,
            agency_id=agency_id))
        plain = service.issue_token(session=session, actor=SYSTEM, user=user)[0] if token else None
    typer.echo(f"user {username} ({role.value}) created")
    if plain:
        typer.echo(f"API token for {username}: {plain}")


@user_app.command("token")
def token(username: str, name: str = typer.Option("cli")) -> None:
    """Issue a new API token for a user."""
    from tslcd.security import service

    with session_scope() as session:
        user = service.get_user_by_name(session=session, username=username)
        plain, _ = service.issue_token(session=session, actor=SYSTEM, user=user, name=name)
    typer.echo(f"API token for {username}: {plain}")


@user_app.command("ensure-admin")
def ensure_admin(username: str = typer.Option("admin")) -> None:
    """Create the first administrator if missing and print a fresh API token for it."""
    from tslcd.security import service

    with session_scope() as session:
        _, plain = service.ensure_admin(session=session, username=username)
    typer.echo(f"Admin API token (user {username}): {plain}")
    typer.echo("Use it as 'Authorization: Bearer <token>' — in /docs press Authorize and paste it.")


@audit_app.command("verify")
def verify(full: bool = typer.Option(False, "--full", help="re-check every record, not only those after the last "
                                                           "verified checkpoint"),
           workers: int = typer.Option(None, help="worker processes for a long full check (default: the CPUs)")
           ) -> None:
    """Check the keyed chain and its checkpoints; exit 1 if any record was edited, removed, reordered or rewritten."""
    from tslcd.core import events
    from tslcd.security import audit

    with session_scope(write=False) as session:
        result = audit.verify(session=session, actor=SYSTEM, full=full, workers=workers)
    events.flush()
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if result.witness:
        typer.echo(f"witness: {result.witness}")
    if not result.ok:
        typer.echo(f"audit log BROKEN ({result.mode} check, {result.checked} good records): {result.problem}",
                   err=True)
        raise typer.Exit(1)
    since = f" (records {result.first_id}-{result.last_id})" if result.mode == "incremental" and result.first_id \
        else ""
    typer.echo(f"audit log intact: {result.checked} records verified{since}, {result.mode} check "
               f"in {result.seconds:.3f} s; the log ends at record {result.last_id}")


@audit_app.command("public-key")
def public_key() -> None:
    """Print the Ed25519 public key that checks the checkpoints (for an outside witness)."""
    from tslcd.security import secrets

    typer.echo(secrets.checkpoint_public_key_hex())


def grant_cmd(role: str = typer.Argument(..., help="the PostgreSQL role the server will run as")) -> None:
    """Give the application's database role its rights (PostgreSQL; run as the tables' owner).

    The role gets what the application needs and, on audit_log, only SELECT and INSERT: it can neither change nor
    remove audit records, nor disable the triggers that refuse it.
    """
    from tslcd.core.database import get_engine
    from tslcd.security.dbroles import grant_app_role

    with get_engine().begin() as conn:
        statements = grant_app_role(conn, role)
    typer.echo(f"role {role}: {len(statements)} grants applied; on audit_log it may only SELECT and INSERT")
