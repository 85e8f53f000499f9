"""`tslcd demo point-at-agent`: a few demo devices polled at a real local SNMP agent, so that a new install shows
real traffic instead of empty charts.

The demo's devices have made-up 10.x addresses. This gives some of its CPEs (whose 100 Mbit/s – 1 Gbit/s access
links make small traffic visible as utilization) and the gateway routers of a few provinces (whose uplinks are
what the capacity report measures a province by) the local agent's address, a v2c credential `local-agent`, and
the agent's interfaces that are up as their ifIndexes, busiest first. Every change goes through the registry's
import path, so it is validated and audited like any other edit.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import typer
from gufo.snmp.aio import SnmpSession
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tslcd.core.errors import DomainValidationError
from tslcd.registry import demo
from tslcd.registry import service as registry
from tslcd.registry.models import (AdminUnit, Device, DeviceRole, Interface, Link, SnmpCredential, Status,
                                   UnitKind)
from tslcd.security.actor import Actor
from tslcd.telemetry.poller import (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_IN_OCTETS, IF_OPER_STATUS, IF_OUT_OCTETS,
                                    OPER_UP)
from tslcd.telemetry.snmp import parse_address

CREDENTIAL = "local-agent"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"


@dataclass(frozen=True, slots=True)
class AgentPort:
    if_index: int
    name: str
    up: bool
    octets: int  # in + out so far: how busy it is


@dataclass(frozen=True, slots=True)
class PointedPort:
    device: str
    interface: str
    if_index: int | None  # None: the agent has fewer ports up than the device has, this one is not polled
    agent_port: str


async def agent_ports(host: str, port: int, community: str, timeout: float = 2.0) -> list[AgentPort]:
    """The agent's interfaces, those up first, then the busiest first."""
    session = SnmpSession(host, port, community=community, timeout=timeout)

    async def column(oid: str) -> dict[int, Any]:
        return {int(name.rsplit(".", 1)[1]): value async for name, value in session.getbulk(oid)}

    names = await column(IF_NAME) or await column(IF_DESCR)
    oper = await column(IF_OPER_STATUS)
    in_octets = await column(IF_HC_IN_OCTETS) or await column(IF_IN_OCTETS)
    out_octets = await column(IF_HC_OUT_OCTETS) or await column(IF_OUT_OCTETS)
    ports = [AgentPort(i, name.decode(errors="replace") if isinstance(name, bytes) else str(name),
                       oper.get(i) == OPER_UP, in_octets.get(i, 0) + out_octets.get(i, 0))
             for i, name in names.items()]
    return sorted(ports, key=lambda p: (not p.up, -p.octets, p.if_index))


DEFAULT_PROVINCES = ("01", "48", "79")  # Hà Nội, Đà Nẵng, TP. Hồ Chí Minh


def point_demo_at_agent(*, session: Session, actor: Actor, address: str, community: str, devices: int = 3,
                        provinces: tuple[str, ...] = DEFAULT_PROVINCES, only: bool = False,
                        timeout: float = 2.0) -> list[PointedPort]:
    """Point `devices` demo CPEs and the provinces' gateway routers at the agent; with `only`, every other device
    stops being polled. A gateway's first port is its uplink, so the agent's busiest port feeds the province."""
    if not demo.is_loaded(session=session):
        raise DomainValidationError("the demo network is not loaded: run `tslcd demo load` first")
    host, port = parse_address(address)
    try:
        ports = asyncio.run(agent_ports(host, port, community, timeout))
    except (TimeoutError, OSError) as exc:
        raise DomainValidationError(f"no SNMP agent answered at {address} with that community ({exc or 'timeout'})"
                                    ) from None
    ports = [p for p in ports if p.up]  # a port that is down would only raise link_down alarms
    if not ports:
        raise DomainValidationError(f"the agent at {address} has no interface up")

    credential = {"name": CREDENTIAL, "version": "v2c", "community": community}
    existing = session.scalar(select(SnmpCredential.id).where(SnmpCredential.name == CREDENTIAL))
    _import(session, actor, "snmp-credentials", [{"id": existing, **credential} if existing else credential])

    linked = exists().where((Link.a_interface_id == Interface.id) | (Link.b_interface_id == Interface.id))
    chosen = session.execute(select(Device.id, Device.name).where(
        Device.role == DeviceRole.cpe, Device.status == Status.active,
        exists().where(Interface.device_id == Device.id, linked)).order_by(Device.id).limit(devices)).all()
    province_ids = session.scalars(select(AdminUnit.id).where(AdminUnit.kind == UnitKind.province,
                                                             AdminUnit.code.in_(provinces),
                                                             AdminUnit.valid_to.is_(None))).all()
    chosen += session.execute(select(Device.id, Device.name).where(
        Device.role == DeviceRole.gateway_router, Device.status == Status.active,
        Device.province_id.in_(province_ids)).order_by(Device.id)).all()
    _import(session, actor, "devices", [{"id": d.id, "mgmt_address": address, "snmp_credential": CREDENTIAL}
                                        for d in chosen])
    pointed, rows = [], []
    for device in chosen:
        # Port k of every device reads the agent's k-th busiest port: uplinks (first ports) get the busiest.
        for k, (iface_id, iface_name) in enumerate(session.execute(select(Interface.id, Interface.name).where(
                Interface.device_id == device.id).order_by(Interface.id))):
            agent_port = ports[k] if k < len(ports) else None
            rows.append({"id": iface_id, "if_index": agent_port.if_index if agent_port else None})
            pointed.append(PointedPort(device.name, iface_name, agent_port and agent_port.if_index,
                                       agent_port.name if agent_port else ""))
    _import(session, actor, "interfaces", rows)
    if only:
        others = session.scalars(select(Device.id).where(Device.snmp_credential_id.is_not(None),
                                                         Device.id.not_in([d.id for d in chosen])))
        _import(session, actor, "devices", [{"id": i, "snmp_credential_id": None} for i in others])
    return pointed


def _import(session: Session, actor: Actor, name: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        registry.import_objects(session=session, actor=actor, res=registry.resource(name), data=orjson.dumps(rows),
                                fmt="json")


def point_at_agent_cmd(address: str = typer.Argument(..., help="the agent, host:port, e.g. 127.0.0.1:1161"),
                       community: str = typer.Option("public", help="its v2c community"),
                       devices: int = typer.Option(3, min=1, help="how many demo CPEs to point at it"),
                       province: list[str] = typer.Option(list(DEFAULT_PROVINCES), help="provinces whose gateway "
                                                          "routers to point at it (their uplinks make the capacity "
                                                          "report)"),
                       only: bool = typer.Option(False, "--only", help="stop polling every other device (their "
                                                 "made-up addresses would only time out)")) -> None:
    """Point a few demo devices at a real SNMP agent, so that `tslcd poll` shows real traffic."""
    from tslcd.core.database import session_scope
    from tslcd.security.actor import SYSTEM
    from tslcd.core.text import table

    with session_scope() as session:
        pointed = point_demo_at_agent(session=session, actor=SYSTEM, address=address, community=community,
                                      devices=devices, provinces=tuple(province), only=only)
    typer.echo(table(["Device", "Interface", "ifIndex", "Agent port"],
                     [(p.device, p.interface, p.if_index, p.agent_port) for p in pointed]))
    typer.echo("now run: tslcd poll --interval 10   (rates appear from the second cycle on)")
