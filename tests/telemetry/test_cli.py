"""`tslcd samples import` and `tslcd report capacity`."""

import json
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.telemetry.conftest import link, sample, feed
from tslcd import cli as root
from tslcd.core.bulk import ImportRejected
from tslcd.telemetry import cli
from tslcd.telemetry.models import Rate, Rollup


@pytest.fixture
def run(session, monkeypatch):
    @contextmanager
    def test_session(write: bool = True):
        yield session

    monkeypatch.setattr(cli, "session_scope", test_session)
    runner = CliRunner()

    def _run(*args: str):
        return runner.invoke(root.app, list(args))

    return _run


def test_samples_import_is_checked_stored_and_rolled_up(run, session, tiny, day, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("device,interface,ts,interval_s,in_bps,out_bps,oper_up\n"
                    f"pe-1,Gi0/0/1,{day + timedelta(minutes=5)},300,1e6,2e6,true\n"
                    f"pe-1,Gi0/0/1,{day + timedelta(minutes=10)},300,,,\n", encoding="utf-8")
    result = run("samples", "import", str(good))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("samples: 2 stored, 0 already stored; roll-ups: 5m ")
    assert session.scalar(select(func.count()).select_from(Rate)) == 2
    assert session.scalar(select(Rollup.in_avg).where(Rollup.period == "5m")) == 1e6

    bad = tmp_path / "bad.csv"
    bad.write_text("device,interface,ts,interval_s,in_bps\npe-1,Gi0/0/1,2020-01-01T00:00:00Z,300,1\n"
                   "pe-1,Gi0/0/1,yesterday,300,1\n", encoding="utf-8")
    result = run("samples", "import", str(bad))
    assert isinstance(result.exception, ImportRejected)
    assert [(e.row, e.column) for e in result.exception.report.errors] == [(2, "ts"), (3, "ts")]
    assert result.exception.report.errors[0].msg.startswith("older than ")


def test_report_capacity_in_three_formats(run, session, tiny, day):
    rc1_pe1 = link(session, "rc1-pe1")
    feed(session, sample(rc1_pe1.a_interface_id, day + timedelta(hours=1), 0, 7e9))
    args = ["report", "capacity", "--from", str(day.date()), "--to", str(day.date())]
    table = run(*args)
    assert table.exit_code == 0, table.output
    assert "0/1 tỉnh dưới 60 %, 0 tỉnh trên 80 %" in table.output
    assert "Thành phố Hà Nội" in table.output and "giữa hai ngưỡng" in table.output
    report = json.loads(run(*args, "--format", "json").output)
    assert report["provinces"]["between"][0]["p95_pct"] == 70.0
    csv_out = run(*args, "--format", "csv").output.splitlines()
    assert csv_out[1].startswith("01,Thành phố Hà Nội,between,1,1,10000000000,")


def test_report_capacity_help_gives_the_default_period_and_bounds_the_links(run, session, tiny, day):
    help_text = " ".join(run("report", "capacity", "--help").output.split())
    assert "default: 30 days before --to" in help_text and "--limit" in help_text
    feed(session, sample(link(session, "rc1-pe1").a_interface_id, day + timedelta(hours=1), 0, 7e9))
    args = ["report", "capacity", "--from", str(day.date()), "--to", str(day.date())]
    assert "1 tuyến có số liệu, 5 tuyến chưa có số liệu" in run(*args).output
    report = json.loads(run(*args, "--format", "json", "--limit", "1").output)
    assert (report["links"]["count"], report["links"]["without_data"], len(report["links"]["results"])) == (1, 5, 1)
    assert run(*args, "--limit", "0").exit_code != 0
