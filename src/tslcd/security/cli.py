"""Users, tokens and the audit log."""

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
    from tslcd.registry.models import Agency, Operator
    from tslcd.security import service
    from tslcd.security.schemas import UserCreate

    with session_scope() as session:
        operator_id = service.lookup_id(session=session, model=Operator, column="slug", value=operator,
                                        label="operator")
        agency_id = service.lookup_id(session=session, model=Agency, column="code", value=agency, label="agency")
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
def verify() -> None:
    """Recompute the hash chain; exit 1 if any record was edited, removed or reordered."""
    from tslcd.security import audit

    with session_scope(write=False) as session:
        result = audit.verify(session=session, actor=SYSTEM)
    if not result.ok:
        typer.echo(f"audit log BROKEN after {result.checked} good records: {result.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {result.checked} records verified")
