"""The event bus (core/events.py), which carries the audit checkpoints to the outside witness."""

import socket
import uuid

import pytest

from tslcd.core import events
from tslcd.core.config import get_settings


def test_subjects_match_like_nats():
    assert events.matches("tslcd.audit.>", "tslcd.audit.checkpoint.ab")
    assert not events.matches("tslcd.audit.>", "tslcd.audit")
    assert events.matches("a.*.c", "a.b.c") and not events.matches("a.*.c", "a.b.d.c")
    assert events.matches("a.b", "a.b") and not events.matches("a.b", "a.b.c")


def test_in_process_subscribers_get_events_and_a_bad_one_breaks_nothing(monkeypatch):
    monkeypatch.setattr(get_settings(), "nats_url", "")
    got = []

    def bad(_subject, _payload):
        raise RuntimeError("subscriber bug")

    stop_bad = events.subscribe("t.>", bad)
    stop = events.subscribe("t.*", lambda subject, payload: got.append((subject, payload)))
    events.publish("t.one", {"n": 1})
    events.publish("u.one", {"n": 2})
    stop()
    stop_bad()
    events.publish("t.two", {"n": 3})
    assert got == [("t.one", {"n": 1})]


def test_jetstream_keeps_the_last_message_of_a_subject(nats_url, monkeypatch):
    url = nats_url
    monkeypatch.setattr(get_settings(), "nats_url", url)
    events.declare_stream("TSLCD_TEST_EVENTS", ["tslcd.test.>"])
    subject = f"tslcd.test.{uuid.uuid4().hex[:8]}"
    assert events.last_message(subject) is None
    for n in range(3):
        events.publish(subject, {"n": n, "text": "Quảng Ninh"})
    assert events.flush(10)
    assert events.last_message(subject) == {"n": 2, "text": "Quảng Ninh"}


def test_an_unreachable_server_never_fails_the_publisher(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setattr(get_settings(), "nats_url", f"nats://127.0.0.1:{port}")
    events.declare_stream("TSLCD_TEST_EVENTS", ["tslcd.test.>"])
    events.publish("tslcd.test.nobody", {"n": 1})  # returns at once
    assert events.flush(15)
    with pytest.raises(ConnectionError):
        events.last_message("tslcd.test.nobody", timeout=2)
