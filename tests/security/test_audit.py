import subprocess
import sys

import pytest
from sqlalchemy import text

from tslcd.core.errors import PermissionDenied
from tslcd.security import audit
from tslcd.security.actor import Actor
from tslcd.security.models import Role


def _write(session, admin, n=5):
    audit.record_many(session=session, actor=admin, changes=[
        audit.Change("create", "sites", i, f"site-{i}", after={"slug": f"site-{i}", "lat": 21.0 + i / 10})
        for i in range(1, n + 1)])
    session.flush()


def test_intact_chain_verifies(session, admin):
    _write(session, admin)
    result = audit.verify(session=session, actor=admin)
    assert (result.ok, result.checked) == (True, 5)


def test_edited_row_is_detected(session, admin):
    _write(session, admin)
    session.execute(text("UPDATE audit_log SET object_repr = 'forged' WHERE id = 3"))
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 3 and "altered" in result.problem


def test_edited_json_is_detected(session, admin):
    _write(session, admin)
    session.execute(text("""UPDATE audit_log SET "after" = '{"slug": "site-2", "lat": 99.0}' WHERE id = 2"""))
    assert audit.verify(session=session, actor=admin).record_id == 2


def test_removed_row_is_detected(session, admin):
    _write(session, admin)
    session.execute(text("DELETE FROM audit_log WHERE id = 2"))
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 2 and "missing" in result.problem


def test_reordered_rows_are_detected(session, admin):
    _write(session, admin)
    session.execute(text("UPDATE audit_log SET id = 100 WHERE id = 2"))
    session.execute(text("UPDATE audit_log SET id = 2 WHERE id = 4"))
    session.execute(text("UPDATE audit_log SET id = 4 WHERE id = 100"))
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 2


def test_only_admins_and_auditors_read_the_log(session):
    with pytest.raises(PermissionDenied):
        audit.verify(session=session, actor=Actor(username="op", role=Role.noc))
    assert audit.verify(session=session, actor=Actor(username="au", role=Role.auditor)).ok


def test_cli_verify_fails_after_a_hand_edit(tmp_path):
    """The whole path a user takes: migrate, write through the CLI, edit a row with sqlite3, verify."""
    env = {"TSLCD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    tslcd = [sys.executable, "-m", "tslcd"]

    def run(*args):
        return subprocess.run([*tslcd, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    assert run("user", "add", "noc1", "--role", "noc").returncode == 0
    assert run("user", "add", "audit1", "--role", "auditor").returncode == 0
    ok = run("audit", "verify")
    assert ok.returncode == 0 and "4 records verified" in ok.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE id = 2")
    broken = run("audit", "verify")
    assert broken.returncode == 1
    assert "record 2 was altered" in broken.stderr
