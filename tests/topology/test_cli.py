"""`tslcd topo` prints readable tables and JSON."""

import json
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from tslcd.topology import cli


@pytest.fixture
def run(net, monkeypatch):
    @contextmanager
    def test_session(write: bool = True):
        yield net.session

    monkeypatch.setattr(cli, "session_scope", test_session)
    runner = CliRunner()

    def _run(*args: str):
        result = runner.invoke(cli.app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    return _run


def test_impact_table(run):
    out = run("impact", "--link", "up-2a", "--link", "up-2b")
    assert "Mất dịch vụ (service lost): 2 cơ quan, 1 thuê bao" in out
    assert "Thành phố Hà Nội (01)" in out and "000.00.03.H01" in out


def test_spof_json(run):
    items = json.loads(run("spof", "--province", "01", "--json"))["items"]
    assert (items[0]["name"], items[0]["agencies_lost"]) == ("com-1", 2)


def test_path_and_redundancy_tables(run):
    out = run("path", "000.00.01.H01", "000.00.03.H01")
    assert "5 chặng" in out and "up-2a" in out
    out = run("redundancy")
    assert "Tổng (total)" in out and "0.17" in out
