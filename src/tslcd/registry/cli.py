"""Demo data, import and export."""

from pathlib import Path

import typer

from tslcd.core.database import session_scope
from tslcd.security.actor import SYSTEM

demo_app = typer.Typer(help="The national demo data set.", no_args_is_help=True)


@demo_app.command("load")
def demo_load(if_empty: bool = typer.Option(False, "--if-empty", help="do nothing when data is already loaded"),
              province: list[str] = typer.Option(None, help="only these current province codes, e.g. 01")) -> None:
    """Load the real administrative units and a national network generated on them."""
    import time

    from tslcd.registry import demo

    with session_scope() as session:
        if demo.is_loaded(session=session):
            if if_empty:
                typer.echo("demo data already loaded")
                return
        start = time.perf_counter()
        counts = demo.load_demo(session=session, actor=SYSTEM, provinces=province or None)
    took = time.perf_counter() - start
    total = sum(counts.values())
    typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
    typer.echo(f"loaded {total} objects in {took:.1f} s ({total / took:,.0f} objects/s)")


def import_cmd(object_type: str = typer.Argument(..., help="e.g. sites, devices, links, agencies"),
               file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
               format: str = typer.Option(None, help="csv or json (default: from the file name)")) -> None:
    """Import a CSV or JSON file: every row valid, or nothing is written."""
    from tslcd.registry import service

    fmt = format or ("json" if file.suffix.lower() == ".json" else "csv")
    with session_scope() as session:
        report = service.import_objects(session=session, actor=SYSTEM, res=service.resource(object_type),
                                        data=file.read_bytes(), fmt=fmt)
    typer.echo(f"{object_type}: {report.created} created, {report.updated} updated")


def export_cmd(object_type: str = typer.Argument(...), format: str = typer.Option("csv", help="csv or json"),
               output: Path = typer.Option(None, "--output", "-o", help="file (default: standard output)")) -> None:
    """Export every object of a type in the import format."""
    from tslcd.registry import service

    with session_scope(write=False) as session:
        body = service.export_objects(session=session, actor=SYSTEM, res=service.resource(object_type), fmt=format)
    if output:
        output.write_bytes(body)
    else:
        typer.echo(body.decode(), nl=False)
