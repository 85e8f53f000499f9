"""`tslcd incident`: the same service and gate from a terminal, acting as `tslcd --user NAME`."""

from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from tests.assurance.test_incidents import _down
from tests.factories import build_tiny
from tslcd.assurance import cli
from tslcd.core.errors import NotFound
from tslcd.security import acting
from tslcd.security import service as security
from tslcd.security.actor import SYSTEM
from tslcd.security.models import Role
from tslcd.security.schemas import UserCreate


@pytest.fixture
def run(session, admin, monkeypatch):
    tiny = build_tiny(session, admin)
    session.commit()
    security.create_user(session=session, actor=SYSTEM, user_in=UserCreate(username="viettel-1", role=Role.partner,
                                                                           operator_id=tiny.viettel))
    session.commit()

    @contextmanager
    def test_session(write: bool = True):
        yield session
        session.commit()

    monkeypatch.setattr(cli, "session_scope", test_session)
    runner = CliRunner()

    def _run(*args: str, user: str | None = None, code: int = 0):
        token = acting._cli_user.set(user)
        try:
            result = runner.invoke(cli.app, list(args))
        finally:
            acting._cli_user.reset(token)
        assert result.exit_code == code, result.output
        return result.output if code == 0 else result

    return tiny, _run


def test_correlate_list_show_ack_resolve(run, session):
    tiny, invoke = run
    _down(session, tiny, links=["rc1-pe1"], devices=["pe-1", "sw-1"])
    out = invoke("correlate")
    assert "1 sự cố mới; 3 cảnh báo được gộp" in out
    number = out.split()[0]
    assert number in invoke("list") and "rc1-pe1" in invoke("list")
    invoke("ack", number, "--reason", "Ca trực tiếp nhận")
    shown = invoke("show", number)
    assert "Đã tiếp nhận" in shown and "new → acknowledged: Ca trực tiếp nhận" in shown
    invoke("resolve", number, "-r", "Đã hàn nối cáp")
    assert number not in invoke("list") and number in invoke("list", "--all")


def test_a_partner_of_another_operator_sees_nothing(run, session):
    tiny, invoke = run
    _down(session, tiny, links=["rc1-pe1"])
    number = invoke("correlate").split()[0]
    assert number not in invoke("list", "--all", user="viettel-1")
    refused = invoke("show", number, user="viettel-1", code=1)
    assert isinstance(refused.exception, NotFound) and number in str(refused.exception)
