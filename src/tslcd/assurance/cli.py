"""`tslcd incident`: incidents from a terminal, acting as `tslcd --user NAME` (the same gate as the API)."""

import typer

from tslcd.assurance import service
from tslcd.assurance.models import STATE_LABELS, IncidentState
from tslcd.core.database import session_scope
from tslcd.core.text import table
from tslcd.security.acting import cli_actor

app = typer.Typer(help="Sự cố: danh sách, chi tiết, tiếp nhận, khắc phục (incidents).", no_args_is_help=True)


def _find(session, actor, ref: str):
    ref = ref.strip()
    if ref.isdigit():
        return service.get_incident(session=session, actor=actor, incident_id=int(ref))
    return service.get_by_number(session=session, actor=actor, number=ref)


@app.command("list")
def list_cmd(all_: bool = typer.Option(False, "--all", help="also resolved, closed and cancelled ones"),
             limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Incidents, newest first (open ones unless --all)."""
    with session_scope(write=False) as session:
        actor = cli_actor(session)
        count, rows = service.list_incidents(session=session, actor=actor, is_open=None if all_ else True,
                                             limit=limit)
        hidden = service.hidden_roots(session, actor, rows)
        typer.echo(table(["Số", "Ưu tiên", "Trạng thái", "Tiêu đề", "Triệu chứng"],
                         [(i.number, i.priority.value, STATE_LABELS[i.state],
                           service.readable(i, i.id in hidden)["title"], i.symptoms) for i in rows]))
        typer.echo(f"{count} sự cố" + ("" if count <= limit else f" (hiển thị {limit})"))


@app.command("show")
def show_cmd(ref: str = typer.Argument(..., help="number (SC-2026-000001) or id")) -> None:
    """One incident: impact, routing, timeline."""
    with session_scope(write=False) as session:
        actor = cli_actor(session)
        incident = _find(session, actor, ref)
        shown = service.readable(incident, bool(service.hidden_roots(session, actor, [incident])))
        i = type("Shown", (), {**shown, "state": incident.state, "priority": incident.priority,
                               "computed_priority": incident.computed_priority})
        lines = [f"{i.number}  {i.title}", f"Trạng thái: {STATE_LABELS[i.state]}   Ưu tiên: {i.priority.value}"
                 + (f" (tính toán {i.computed_priority.value}; {i.priority_reason})" if i.priority_reason else ""),
                 f"Nguyên nhân gốc: {i.root_type or '-'} {i.root_name}" + ("   (sự cố phối hợp)" if i.joint else ""),
                 f"Ảnh hưởng: {i.agencies_lost} cơ quan mất dịch vụ, {i.agencies_redundancy_lost} mất dự phòng, "
                 f"{i.subscriptions_lost} thuê bao; {i.symptoms} cảnh báo triệu chứng", "", "Diễn biến:"]
        for e in service.timeline(session=session, actor=actor, incident_id=i.id):
            change = f"{e.from_state} → {e.to_state}: " if e.to_state else ""
            lines.append(f"  {e.ts:%Y-%m-%d %H:%M:%S}  {e.actor}  {change}{e.text}")
        typer.echo("\n".join(lines))


def _move(ref: str, to: IncidentState, reason: str) -> None:
    with session_scope() as session:
        actor = cli_actor(session)
        incident = service.transition(session=session, actor=actor, incident_id=_find(session, actor, ref).id, to=to,
                                      reason=reason)
        typer.echo(f"{incident.number}: {STATE_LABELS[incident.state]}")


ReasonOption = typer.Option(..., "--reason", "-r", help="why (recorded in the timeline and the audit log)")


@app.command("ack")
def ack_cmd(ref: str = typer.Argument(...), reason: str = ReasonOption) -> None:
    """Acknowledge (tiếp nhận) an incident."""
    _move(ref, IncidentState.acknowledged, reason)


@app.command("move")
def move_cmd(ref: str = typer.Argument(...), state: IncidentState = typer.Argument(...),
             reason: str = ReasonOption) -> None:
    """Move an incident to any state its current one allows."""
    _move(ref, state, reason)


@app.command("resolve")
def resolve_cmd(ref: str = typer.Argument(...), reason: str = ReasonOption) -> None:
    """Mark an incident resolved (đã khắc phục)."""
    _move(ref, IncidentState.resolved, reason)


@app.command("correlate")
def correlate_cmd() -> None:
    """Group the open alarms no incident holds yet into incidents now."""
    with session_scope() as session:
        result = service.correlate(session=session, actor=cli_actor(session))
        for i in result.opened:
            typer.echo(f"{i.number}  {i.priority.value}  {i.title}")
        typer.echo(f"{len(result.opened)} sự cố mới; {result.grouped} cảnh báo được gộp")
