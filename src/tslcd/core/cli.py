"""Database and server commands."""

import typer

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations (creates the SQLite database under ./var/ on first use)."""
    from tslcd.core.config import get_settings
    from tslcd.core.migrate import upgrade as run_upgrade

    run_upgrade(revision)
    typer.echo(f"database at revision {revision}: {_safe_url(get_settings().database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def serve(host: str = typer.Option("127.0.0.1", help="address to listen on"),
          port: int = typer.Option(8000), workers: int = typer.Option(1)) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /docs)."""
    import uvicorn

    typer.echo(f"tslcd listening on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run("tslcd.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")
