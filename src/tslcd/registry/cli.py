"""Demo data, import and export."""

from collections.abc import Iterator
from pathlib import Path

import typer

from tslcd.core.database import session_scope
from tslcd.core.progress import progress
from tslcd.security.acting import cli_actor

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
        with progress("demo", unit="object types") as done:
            counts = demo.load_demo(session=session, actor=cli_actor(session), provinces=province or None,
                                    progress=done)
    took = time.perf_counter() - start
    total = sum(counts.values())
    typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
    typer.echo(f"loaded {total} objects in {took:.1f} s ({total / took:,.0f} objects/s)")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from fh


def import_cmd(object_type: str = typer.Argument(..., help="e.g. sites, devices, links, agencies"),
               file: Path = typer.Argument(None, exists=True, dir_okay=False, readable=True,
                                           help="CSV or JSON file (not needed with --columns)"),
               format: str = typer.Option(None, help="csv or json (default: from the file name)"),
               encoding: str = typer.Option(None, help="the file's encoding when not UTF-8: cp1258, cp1252, "
                                                       "latin-1"),
               columns: bool = typer.Option(False, "--columns", help="list the columns of this object type ('all': "
                                                                     "every type) and exit"),
               markdown: bool = typer.Option(False, "--markdown", help="with --columns: as Markdown tables")) -> None:
    """Import a CSV or JSON file: every row valid, or nothing is written."""
    from tslcd.registry import columns as column_docs
    from tslcd.registry import service

    if columns:
        names = list(service.RESOURCES) if object_type == "all" else [service.resource(object_type).name]
        typer.echo(column_docs.describe(names, markdown=markdown))
        return
    if file is None:
        raise typer.BadParameter("name the file to import (or use --columns)", param_hint="FILE")
    fmt = format or ("json" if file.suffix.lower() == ".json" else "csv")
    res = service.resource(object_type)
    with session_scope() as session, progress(f"{object_type}: import") as done:
        report = service.import_objects(session=session, actor=cli_actor(session), res=res,
                                        data=lambda: _chunks(file), fmt=fmt, encoding=encoding, progress=done)
    typer.echo(f"{object_type}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged")


def export_cmd(object_type: str = typer.Argument(...), format: str = typer.Option("csv", help="csv or json"),
               output: Path = typer.Option(None, "--output", "-o", help="file (default: standard output)")) -> None:
    """Export every object of a type in the import format."""
    import sys

    from tslcd.registry import service

    with session_scope(write=False) as session:
        pieces = service.iter_export(session=session, actor=cli_actor(session), res=service.resource(object_type),
                                     fmt=format)
        if output:
            with output.open("wb") as fh:
                for piece in pieces:
                    fh.write(piece)
        else:
            for piece in pieces:
                sys.stdout.buffer.write(piece)
            sys.stdout.flush()
