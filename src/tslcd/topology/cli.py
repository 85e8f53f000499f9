"""`tslcd topo`: the topology questions from a terminal, as plain-text tables or JSON."""

from collections.abc import Callable

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from tslcd.core.database import session_scope
from tslcd.core.text import table
from tslcd.security.actor import SYSTEM
from tslcd.topology import schemas, service

app = typer.Typer(help="Cấu trúc mạng: đường đi, ảnh hưởng sự cố, điểm lỗi đơn, dự phòng (topology).",
                  no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")


def _ask(question: Callable[[Session], BaseModel], as_json: bool, show: Callable[[BaseModel], str]) -> None:
    with session_scope(write=False) as session:
        answer = question(session)
    typer.echo(answer.model_dump_json(indent=2) if as_json else show(answer))


def _rate(bits: int) -> str:
    return f"{bits / 1e9:g} Gb/s" if bits >= 10**9 else f"{bits / 1e6:g} Mb/s"


def _province(p: schemas.ProvinceBrief | None) -> str:
    return f"{p.name} ({p.code})" if p else "Trung ương (central)"


@app.command("path")
def path_cmd(from_agency: str = typer.Argument(..., help="agency code or id"),
             to_agency: str = typer.Argument(..., help="agency code or id"), as_json: bool = JsonOption) -> None:
    """Fewest-hop path between two agencies."""
    def show(p: schemas.PathRead) -> str:
        rows: list[tuple] = []  # one row per device with the link that led to it; a segment on a row of its own

        def row(link: schemas.PathLink | None, device: schemas.PathDevice | None, label: str = "") -> None:
            rows.append((len(rows), link.slug if link else "", link.tier if link else "",
                         _rate(link.capacity) if link else "", device.name if device else label,
                         device.role if device else "", device.site.slug if device and device.site else ""))

        link = None
        for step in p.steps:
            if isinstance(step, schemas.PathDevice):
                row(link, step)
                link = None
                continue
            if link is not None:
                row(link, None)
            link = step if isinstance(step, schemas.PathLink) else None
            if isinstance(step, schemas.PathSegment):
                row(None, None, step.label)
        if link is not None:
            row(link, None)

        def end(a: schemas.AgencyBrief | schemas.RedactedAgency) -> str:
            return f"{a.name} ({a.code})" if isinstance(a, schemas.AgencyBrief) else a.label

        return (f"{end(p.from_agency)} → {end(p.to_agency)}: {p.links} chặng (links)\n"
                + table(["#", "Tuyến (link)", "Cấp", "Dung lượng", "Thiết bị (device)", "Vai trò", "Trạm (site)"],
                        rows))

    _ask(lambda session: service.path(session=session, actor=SYSTEM, from_agency=from_agency,
                                      to_agency=to_agency), as_json, show)


@app.command("impact")
def impact_cmd(link: list[str] = typer.Option([], "--link", help="failed link (slug or id); repeatable"),
               device: list[str] = typer.Option([], "--device", help="failed device (name or id); repeatable"),
               site: list[str] = typer.Option([], "--site", help="failed site (slug or id); repeatable"),
               limit: int = typer.Option(50, help="agencies listed at most (counts are always complete)"),
               as_json: bool = JsonOption) -> None:
    """What a failure of links, devices and sites takes away."""
    def show(r: schemas.ImpactRead) -> str:
        out = [f"Mất dịch vụ (service lost): {len(r.agencies_lost)} cơ quan, {len(r.subscriptions_lost)} thuê bao; "
               f"mất dự phòng (redundancy lost): {len(r.agencies_redundancy_lost)} cơ quan; "
               f"{r.devices_cut_off} thiết bị mất kết nối"]
        if r.already_inactive:
            out.append("Không hoạt động sẵn (already inactive): " + ", ".join(r.already_inactive))
        if r.by_province:
            out += ["", table(["Tỉnh/thành (province)", "Mất dịch vụ", "Mất dự phòng", "Thuê bao"],
                              [(_province(p.province), p.agencies_lost, p.agencies_redundancy_lost,
                                p.subscriptions_lost) for p in r.by_province])]
        for title, agencies in (("Cơ quan mất dịch vụ", r.agencies_lost),
                                ("Cơ quan mất dự phòng", r.agencies_redundancy_lost)):
            if agencies:
                more = f" (first {limit} of {len(agencies)})" if len(agencies) > limit else ""
                out += ["", f"{title}{more}:",
                        table(["Mã định danh", "Tên"], [(a.code, a.name) for a in agencies[:limit]])]
        return "\n".join(out)

    _ask(lambda session: service.impact(session=session, actor=SYSTEM, links=link, devices=device, sites=site),
         as_json, show)


@app.command("spof")
def spof_cmd(province: str = typer.Option(None, help="province code (e.g. 01) or id; default: whole country"),
             min_agencies: int = typer.Option(1, help="only failures cutting off at least this many agencies"),
             limit: int = typer.Option(30, help="rows listed at most"), as_json: bool = JsonOption) -> None:
    """Single points of failure: links and devices whose failure alone cuts agencies off, worst first."""
    def show(r: schemas.SpofRead) -> str:
        links = sum(p.links for p in r.by_province)
        head = (f"Điểm lỗi đơn (single points of failure){' — ' + _province(r.province) if r.province else ''}: "
                f"{links} tuyến, {r.total - links} thiết bị" + (f"; {len(r.items)} worst listed" if
                                                                 len(r.items) < r.total else ""))
        rows = [("tuyến" if i.kind == "link" else "thiết bị", i.name, i.tier or i.role, i.agencies_lost,
                 i.subscriptions_lost) for i in r.items]
        return head + "\n" + table(["Loại", "Tên", "Cấp/vai trò", "Cơ quan mất", "Thuê bao mất"], rows)

    _ask(lambda session: service.spof(session=session, actor=SYSTEM, province=province, min_agencies=min_agencies,
                                      limit=limit), as_json, show)


@app.command("redundancy")
def redundancy_cmd(province: str = typer.Option(None, help="province code (e.g. 01) or id; default: all"),
                   as_json: bool = JsonOption) -> None:
    """Share of each province's agencies that no single link failure can cut off, weakest first."""
    def show(r: schemas.RedundancyRead) -> str:
        rows = [(_province(p.province) if p is not r.total else "Tổng (total)", p.agencies, p.redundant,
                 p.single_homed, p.unserved, p.no_equipment, f"{p.score:.2f}") for p in [*r.provinces, r.total]]
        return table(["Tỉnh/thành (province)", "Cơ quan", "Dự phòng", "Đơn tuyến", "Mất kết nối", "Chưa có TB",
                      "Điểm"], rows)

    _ask(lambda session: service.redundancy(session=session, actor=SYSTEM, province=province), as_json, show)
