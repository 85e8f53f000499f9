"""The keyed audit chain, its checkpoints and its append-only table, attacked as someone with the database would."""

import subprocess
import sys

import orjson
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from tslcd.core import events
from tslcd.core.config import DEV_SECRET, Settings, get_settings
from tslcd.core.errors import PermissionDenied
from tslcd.security import audit, chain
from tslcd.security.actor import Actor
from tslcd.security.models import AuditRecord, Role
from tests.security import tamper


def _write(session, admin, n=5, start=1):
    audit.lock(session)
    audit.record_many(session=session, actor=admin, changes=[
        audit.Change("create", "sites", i, f"site-{i}", after={"slug": f"site-{i}", "lat": 21.0 + i / 10})
        for i in range(start, start + n)])
    session.flush()


def _committed(session, admin, n=5, start=1):
    """Records written and committed (the fixture's commit is a savepoint, so the test still rolls back)."""
    _write(session, admin, n, start)
    session.commit()


def _checkpoints() -> list[dict]:
    path = audit.checkpoint_path()
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_intact_chain_verifies(session, admin):
    _write(session, admin)
    result = audit.verify(session=session, actor=admin)
    assert (result.ok, result.checked, result.mode, result.last_id) == (True, 5, "full", 5)


def test_the_chain_is_keyed(session, admin, monkeypatch):
    """The same records do not verify under another key: the key, not the database, makes a record valid."""
    _write(session, admin)
    monkeypatch.setattr(get_settings(), "audit_key", "another-key-entirely")
    result = audit.verify(session=session, actor=admin, full=True)
    assert not result.ok and result.record_id == 1 and "altered" in result.problem


def test_the_development_key_is_refused_outside_development():
    with pytest.raises(ValueError, match="TSLCD_AUDIT_KEY"):
        Settings(environment="production", secret_key="a-real-secret", audit_key=DEV_SECRET)
    with pytest.raises(ValueError, match="TSLCD_SECRET_KEY"):
        Settings(environment="production", secret_key=DEV_SECRET)


def _refused(session, statement: str) -> str:
    with pytest.raises(DBAPIError) as caught:
        with session.begin_nested():
            session.execute(text(statement))
    return str(caught.value.orig)


def test_triggers_refuse_update_and_delete(session, admin):
    _write(session, admin)
    assert "append-only" in _refused(session, "UPDATE audit_log SET body = body WHERE id = 3")
    assert "append-only" in _refused(session, "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)")
    if session.get_bind().dialect.name == "postgresql":
        assert "append-only" in _refused(session, "TRUNCATE audit_log")
    assert audit.verify(session=session, actor=admin).ok


# The attacks: each bypasses the triggers first, as the owner of the table can.
def test_edited_row_is_detected(session, admin):
    _committed(session, admin)
    tamper.edit(session, 3, object_repr="forged")
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 3 and "altered" in result.problem


def test_edited_json_is_detected(session, admin):
    _committed(session, admin)
    tamper.edit(session, 2, after='{"slug":"site-2","lat":99.0}')
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 2 and "altered" in result.problem


def test_removed_row_is_detected(session, admin):
    _committed(session, admin)
    tamper.delete(session, "id = 2")
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 2 and "missing" in result.problem


def test_removed_newest_row_is_detected(session, admin):
    """The unkeyed chain verified as intact after `delete … where id = (select max(id) …)`."""
    _committed(session, admin)
    tamper.delete(session, "id = (SELECT max(id) FROM audit_log)")
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 5 and "missing" in result.problem
    assert "names 5 records" in result.problem


def test_removed_newest_rows_are_detected_in_full_mode_too(session, admin):
    _committed(session, admin)
    tamper.delete(session, "id >= 4")
    result = audit.verify(session=session, actor=admin, full=True)
    assert not result.ok and result.record_id == 4


def test_reordered_rows_are_detected(session, admin):
    _committed(session, admin)
    tamper.reorder(session, 2, 4)
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 2


def test_rewritten_chain_is_detected(session, admin):
    """Edit a record and recompute every later hash: without the key the first rewritten record fails."""
    _committed(session, admin)
    tamper.rewrite(session, 3, "forged")
    rows = tamper.stored_rows(session)
    assert all(r[4] == p[2] for p, r in zip(rows, rows[1:]))  # the links are consistent again
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 3 and "altered" in result.problem


def test_a_writer_refuses_to_seal_a_forged_head(session, admin):
    """Re-linking the chain without the key leaves the newest record with a MAC that fails: the next write must not
    link to it (it would seal the forgery); it is refused, and the log still names the first rewritten record."""
    _committed(session, admin)
    tamper.rewrite(session, 3, "forged")
    with pytest.raises(audit.AuditChainBroken, match=r"newest audit record \(5\)") as refused:
        _write(session, admin, 1, start=6)
    assert refused.value.status == 503
    result = audit.verify(session=session, actor=admin, full=True)
    assert not result.ok and result.record_id == 3 and result.last_id == 5


def test_a_nul_in_an_image_is_dropped_alike_on_both_backends(session, admin):
    audit.lock(session)
    audit.record_many(session=session, actor=admin, changes=[
        audit.Change("update", "sites", 1, "site-1", before={"name": "a\x00b"}, after={"n\x00": ["x\x00"]})])
    session.flush()
    rec = session.get(AuditRecord, 1)
    assert (rec.before, rec.after) == ({"name": "ab"}, {"n": ["x"]})
    assert audit.verify(session=session, actor=admin).ok


# Checkpoints
def test_a_checkpoint_is_signed_after_each_commit_that_appended(session, admin):
    _committed(session, admin, 3)
    assert [(c["kind"], c["last_id"], c["count"]) for c in _checkpoints()] == [("commit", 3, 3)]
    session.commit()  # nothing appended: no checkpoint
    _committed(session, admin, 2, start=4)
    cps = _checkpoints()
    assert [c["last_id"] for c in cps] == [3, 5]
    assert cps[-1]["head"] == tamper.stored_rows(session)[-1][2]
    assert all(audit.signature_ok(c) for c in cps)
    assert cps[-1]["at"].endswith("+00:00")
    forged = {**cps[-1], "last_id": 6}
    assert not audit.signature_ok(forged)


def test_no_checkpoint_for_rolled_back_work(session, admin):
    _committed(session, admin, 2)
    savepoint = session.begin_nested()
    _write(session, admin, 3, start=3)
    savepoint.rollback()
    session.commit()
    _write(session, admin, 1, start=3)
    session.rollback()
    assert [c["last_id"] for c in _checkpoints()] == [2]
    assert audit.verify(session=session, actor=admin).ok


def test_a_forged_checkpoint_line_fails_verification(session, admin):
    _committed(session, admin, 3)
    cp = _checkpoints()[-1]
    with audit.checkpoint_path().open("ab") as fh:
        fh.write(orjson.dumps({**cp, "last_id": 2, "head": "f" * 64, "count": 2, "kind": "verified"}) + b"\n")
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and "bad signature" in result.problem


# Incremental verification
def test_verify_is_incremental_after_a_verification(session, admin):
    _committed(session, admin, 5)
    first = audit.verify(session=session, actor=admin)
    assert (first.ok, first.mode, first.checked) == (True, "full", 5)
    assert _checkpoints()[-1]["kind"] == "verified"
    _committed(session, admin, 3, start=6)
    second = audit.verify(session=session, actor=admin)
    assert (second.ok, second.mode, second.checked, second.first_id, second.last_id) == (True, "incremental", 3, 6, 8)
    assert audit.verify(session=session, actor=admin, full=True).checked == 8


def test_incremental_verify_detects_tampering_after_the_anchor(session, admin):
    _committed(session, admin, 5)
    assert audit.verify(session=session, actor=admin).ok
    _committed(session, admin, 3, start=6)
    tamper.edit(session, 7, actor="someone-else")
    result = audit.verify(session=session, actor=admin)
    assert (result.ok, result.mode, result.record_id) == (False, "incremental", 7)


@pytest.mark.parametrize("attack", ["rewrite", "delete-middle", "delete-newest"])
def test_incremental_verify_notices_the_verified_history_changed(session, admin, attack):
    """A rewrite or removal before the anchor changes the anchor's record or the count: the check goes full and
    names the first bad record."""
    _committed(session, admin, 5)
    assert audit.verify(session=session, actor=admin).ok
    _committed(session, admin, 2, start=6)
    if attack == "rewrite":
        tamper.rewrite(session, 2, "forged")
        expected = 2
    elif attack == "delete-middle":
        tamper.delete(session, "id = 3")
        expected = 3
    else:
        tamper.delete(session, "id >= 5")
        expected = 5
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == expected, result


def test_an_old_edit_needs_the_full_check(session, admin):
    """Incremental checks what came after the last verification; --full re-checks every record."""
    _committed(session, admin, 5)
    assert audit.verify(session=session, actor=admin).ok
    tamper.edit(session, 2, note="changed later")
    full = audit.verify(session=session, actor=admin, full=True)
    assert not full.ok and full.record_id == 2 and full.mode == "full"


def test_full_verify_in_worker_processes_names_the_first_bad_record(engine, tmp_path_factory, admin):
    """The parallel path reads with connections of its own, so it runs on a database of its own."""
    from sqlalchemy.orm import Session

    from tests.conftest import own_database

    with own_database(engine, tmp_path_factory) as own:
        with Session(own) as s:
            for start in range(1, 3001, 1000):
                _write(s, admin, 1000, start)
                s.commit()
            assert audit.verify(session=s, actor=admin, full=True, workers=3).checked == 3000
            s.rollback()
            tamper.edit(s, 2500, object_repr="forged")
            tamper.delete(s, "id = 1200")
            s.commit()
            saved = audit.PARALLEL_FROM, audit.COLD_PARALLEL_FROM
            audit.PARALLEL_FROM = audit.COLD_PARALLEL_FROM = 1
            try:
                result = audit.verify(session=s, actor=admin, full=True, workers=3)
            finally:
                audit.PARALLEL_FROM, audit.COLD_PARALLEL_FROM = saved
            assert not result.ok and result.record_id == 1200 and "missing" in result.problem
            assert chain.pool_ready(3)  # the workers did the fast check (and stay for the next verification)


# The outside witness
def test_the_nats_witness_catches_what_the_file_lost(nats_url, session, admin, monkeypatch):
    url = nats_url
    monkeypatch.setattr(get_settings(), "nats_url", url)
    _committed(session, admin, 4)
    assert events.flush(10)
    audit.checkpoint_path().unlink()  # the attacker also owns the application's machine
    tamper.delete(session, "id = 4")
    result = audit.verify(session=session, actor=admin)
    assert not result.ok and result.record_id == 4 and "witness" in result.problem


# The write lock
def test_lock_is_taken_once_per_transaction(session, admin):
    seen = []

    def note(_conn, _cursor, statement, *_args):
        if "pg_advisory_xact_lock" in statement:
            seen.append(statement)

    event.listen(session.get_bind(), "before_cursor_execute", note)
    try:
        audit.lock(session)
        audit.lock(session)
        _write(session, admin, 2)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", note)
    assert len(seen) == (1 if session.get_bind().dialect.name == "postgresql" else 0)


def test_strict_mode_makes_a_missing_lock_an_error(session, admin):
    from tslcd.security.models import LoginThrottle
    from tslcd.core.database import utcnow

    audit.require_lock(True)
    try:
        with pytest.raises(audit.AuditLockError, match="without audit.lock"):
            audit.record_many(session=session, actor=admin, changes=[audit.Change("create", "sites", 1)])
        session.add(LoginThrottle(kind="user", key="x", failures=1, window_start=utcnow(), lockouts=0))
        session.flush()
        with pytest.raises(audit.AuditLockError, match="before audit.lock"):
            audit.lock(session)
    finally:
        audit.require_lock(False)
    audit.record_many(session=session, actor=admin, changes=[audit.Change("create", "sites", 1)])


# Who reads it, and what it shows
def test_only_admins_and_auditors_read_the_log(session):
    with pytest.raises(PermissionDenied):
        audit.verify(session=session, actor=Actor(username="op", role=Role.noc))
    assert audit.verify(session=session, actor=Actor(username="au", role=Role.auditor)).ok


def test_no_memory_addresses_in_object_repr(session, admin, make_token):
    from sqlalchemy import select

    from tslcd.security.models import AuditRecord

    make_token(Role.noc)
    reprs = session.scalars(select(AuditRecord.object_repr)).all()
    assert reprs and not any(" object at 0x" in r for r in reprs)
    assert any(r.startswith("noc-") for r in reprs)

    class Plain:
        __tablename__ = "things"
        id = 7

    assert audit.describe(Plain()) == "things 7"

    class Broken(Plain):
        def __str__(self):
            raise AttributeError("'str' object has no attribute 'value'")

    assert audit.describe(Broken()) == "things 7"


def test_audit_endpoints_give_times_with_their_offset(client, session, admin, make_token):
    headers = make_token(Role.auditor)
    page = client.get("/api/v1/audit", headers=headers).json()
    assert page["results"] and all(r["ts"].endswith(("Z", "+00:00")) for r in page["results"])
    session.commit()  # a checkpoint, so verify names one
    verified = client.get("/api/v1/audit/verify", headers=headers).json()
    assert verified["ok"] and verified["checkpoint_at"].endswith(("Z", "+00:00"))
    assert audit.jsonable(audit.utcnow()).endswith("+00:00")


def test_verify_over_the_api_full_and_incremental(client, session, make_token):
    headers = make_token(Role.auditor)
    session.commit()
    first = client.get("/api/v1/audit/verify", headers=headers).json()
    make_token(Role.noc)
    session.commit()
    second = client.get("/api/v1/audit/verify", headers=headers).json()
    full = client.get("/api/v1/audit/verify?full=true", headers=headers).json()
    assert (first["ok"], second["ok"], full["ok"]) == (True, True, True)
    assert second["mode"] == "incremental" and second["checked"] == 2 and full["checked"] == second["last_id"]
    tamper.edit(session, 1, actor="someone-else")
    broken = client.get("/api/v1/audit/verify?full=true", headers=headers).json()
    assert not broken["ok"] and broken["record_id"] == 1


def test_cli_verify_fails_after_a_hand_edit(tmp_path):
    """The whole path a user takes: migrate, write through the CLI, edit a row with sqlite3 (dropping the trigger
    as the file's owner can), verify."""
    env = {"TSLCD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TSLCD_VAR_DIR": str(tmp_path / "var"),
           "PATH": "/usr/bin:/bin"}
    tslcd = [sys.executable, "-m", "tslcd"]

    def run(*args):
        return subprocess.run([*tslcd, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    assert run("user", "add", "noc1", "--role", "noc").returncode == 0
    assert run("user", "add", "audit1", "--role", "auditor").returncode == 0
    ok = run("audit", "verify")
    assert ok.returncode == 0 and "4 records verified" in ok.stdout, ok.stderr
    assert (tmp_path / "var" / "audit" / "checkpoints.jsonl").exists()
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET body = body WHERE id = 2")
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET body = json_set(body, '$[3]', 'someone-else') WHERE id = 2")
    broken = run("audit", "verify", "--full")
    assert broken.returncode == 1
    assert "record 2 was altered" in broken.stderr
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_delete")
        conn.execute("DELETE FROM audit_log WHERE id >= 2")
    gone = run("audit", "verify")
    assert gone.returncode == 1 and "record 2 is missing" in gone.stderr
