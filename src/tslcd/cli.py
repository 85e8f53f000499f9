"""The `tslcd` command: every domain's commands under one name; domain errors become one-line messages."""

import sys

import typer

from tslcd.core.errors import DomainError

app = typer.Typer(no_args_is_help=True, help="tslcd — mạng truyền số liệu chuyên dùng: registry, topology, audit.",
                  pretty_exceptions_enable=False)


def _mount() -> None:
    from tslcd.core.cli import db_app, serve
    from tslcd.registry.cli import demo_app, export_cmd, import_cmd
    from tslcd.security.cli import audit_app, user_app
    from tslcd.telemetry.cli import report_app, samples_app, telemetry_app
    from tslcd.telemetry.daemon import poll_cmd
    from tslcd.telemetry.demo_agent import point_at_agent_cmd
    from tslcd.telemetry.traps import traps_cmd
    from tslcd.topology.cli import app as topo_app

    app.add_typer(db_app, name="db")
    app.add_typer(demo_app, name="demo")
    app.add_typer(user_app, name="user")
    app.add_typer(audit_app, name="audit")
    app.add_typer(topo_app, name="topo")
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


def main() -> None:
    try:
        app()
    except DomainError as exc:
        from tslcd.core.bulk import ImportRejected

        if isinstance(exc, ImportRejected):
            for err in exc.report.errors:
                typer.echo(f"row {err.row}{f' [{err.column}]' if err.column else ''}: {err.msg}", err=True)
        typer.echo(f"error: {exc.detail}", err=True)
        sys.exit(1)
