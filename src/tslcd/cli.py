"""The `tslcd` command: every domain's commands under one name.

Domain errors become one-line messages with exit code 1; anything unexpected is one line too (exit 2), with the
traceback written to var/log/cli-errors.log instead of the terminal.
"""

import sys

import typer

from tslcd.core.errors import DomainError

app = typer.Typer(no_args_is_help=True, help="tslcd — mạng truyền số liệu chuyên dùng: registry, topology, audit.",
                  pretty_exceptions_enable=False)


@app.callback()
def _global(user: str = typer.Option(None, "--user", envvar="TSLCD_USER",
                                     help="act as this user, with its role and scope (default: the system)")) -> None:
    from tslcd.security.acting import set_cli_user

    set_cli_user(user)


def _mount() -> None:
    from tslcd.assurance.cli import app as incident_app
    from tslcd.core.cli import db_app, serve
    from tslcd.registry.cli import demo_app, export_cmd, import_cmd
    from tslcd.security.cli import audit_app, grant_cmd, user_app
    from tslcd.telemetry.cli import report_app, samples_app, telemetry_app
    from tslcd.telemetry.daemon import poll_cmd
    from tslcd.telemetry.demo_agent import point_at_agent_cmd
    from tslcd.telemetry.traps import traps_cmd
    from tslcd.topology.cli import app as topo_app

    app.add_typer(db_app, name="db")
    db_app.command("grant")(grant_cmd)
    app.add_typer(demo_app, name="demo")
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")
    app.add_typer(topo_app, name="topo")
    app.add_typer(incident_app, name="incident")
    app.add_typer(report_app, name="report")
    app.add_typer(samples_app, name="samples")
    app.add_typer(telemetry_app, name="telemetry")
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    app.command("serve")(serve)
    app.command("poll")(poll_cmd)
    app.command("traps")(traps_cmd)
    demo_app.command("point-at-agent")(point_at_agent_cmd)


_mount()


def _log_unexpected(exc: BaseException) -> str:
    """Write the traceback under var/log and return where it went."""
    import traceback
    from datetime import datetime, timezone

    try:
        from tslcd.core.config import get_settings

        folder = get_settings().var_dir / "log"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "cli-errors.log"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {datetime.now(timezone.utc).isoformat()} tslcd {' '.join(sys.argv[1:2])}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return str(path)
    except Exception:  # the log itself failed: say so, never hide the first error behind a second
        return "nowhere (the log could not be written)"


def main() -> None:
    try:
        app()
    except DomainError as exc:
        from tslcd.core.bulk import ImportRejected

        if isinstance(exc, ImportRejected):
            for err in exc.report.errors:
                typer.echo(f"line {err.row}{f' [{err.column}]' if err.column else ''}: {err.msg}", err=True)
            if exc.report.more_errors:
                typer.echo(f"… and {exc.report.more_errors} more bad rows", err=True)
        typer.echo(f"error: {exc.detail}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        where = _log_unexpected(exc)
        typer.echo(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                   f" (details in {where})", err=True)
        sys.exit(2)
