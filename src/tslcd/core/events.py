"""The event bus: in-process subscribers always, NATS JetStream as well when TSLCD_NATS_URL is set.

    events.declare_stream("TSLCD_AUDIT", ["tslcd.audit.>"])   # once, at import of the publishing module
    events.publish("tslcd.audit.checkpoint.ab12", {"last_id": 7})
    events.subscribe("tslcd.audit.>", handler)                # in-process; handler(subject, payload)

Publishing never blocks the caller on the network: messages for NATS go through a queue to one background thread
that owns the connection (nats-py is asyncio). `flush()` waits until what was queued is acknowledged by JetStream
(the CLI flushes before it exits). If the server cannot be reached, messages are dropped with a warning in the log,
never an error in the unit of work that published them. Core knows no domain: subjects and streams are named by
the publishers.
"""

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("tslcd.events")

Handler = Callable[[str, dict[str, Any]], None]

_subscribers: list[tuple[str, Handler]] = []
_streams: dict[str, tuple[str, ...]] = {}
_lock = threading.Lock()


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` is one or more tokens."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def subscribe(pattern: str, handler: Handler) -> Callable[[], None]:
    """Call `handler(subject, payload)` for every event published in this process whose subject matches."""
    entry = (pattern, handler)
    with _lock:
        _subscribers.append(entry)

    def unsubscribe() -> None:
        with _lock:
            if entry in _subscribers:
                _subscribers.remove(entry)

    return unsubscribe


def declare_stream(name: str, subjects: list[str]) -> None:
    """The JetStream stream that keeps these subjects (created on the server when first needed)."""
    _streams[name] = tuple(subjects)


def publish(subject: str, payload: dict[str, Any]) -> None:
    """Deliver to in-process subscribers now and, when NATS is configured, to JetStream in the background."""
    with _lock:
        handlers = [h for p, h in _subscribers if matches(p, subject)]
    for handler in handlers:
        try:
            handler(subject, payload)
        except Exception:  # one bad subscriber must not break the publisher's unit of work
            log.exception("event handler for %s failed", subject)
    url = _nats_url()
    if url:
        _publisher(url).put(subject, orjson.dumps(payload))


def flush(timeout: float = 5.0) -> bool:
    """Wait until every message queued for NATS was acknowledged (or dropped); False on timeout."""
    pub = _current
    return True if pub is None or pub.pid != os.getpid() else pub.flush(timeout)


def last_message(subject: str, *, timeout: float = 3.0) -> dict[str, Any] | None:
    """The newest message JetStream keeps for `subject` (None when there is none or NATS is not configured).

    Raises ConnectionError when NATS is configured but cannot answer within `timeout`.
    """
    url = _nats_url()
    if not url:
        return None
    stream = _stream_for(subject)
    if stream is None:
        return None
    return _publisher(url).call(_get_last(stream, subject), timeout)


def _nats_url() -> str:
    from tslcd.core.config import get_settings

    return get_settings().nats_url


def _stream_for(subject: str) -> str | None:
    for name, subjects in _streams.items():
        if any(matches(p, subject) for p in subjects):
            return name
    return None


async def _get_last(stream: str, subject: str) -> dict[str, Any] | None:
    from nats.js.errors import NotFoundError

    js = await _current.jetstream()
    try:
        msg = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return None
    return orjson.loads(msg.data)


class _Publisher:
    """One background thread with an asyncio loop and one NATS connection, per process and URL."""

    def __init__(self, url: str):
        self.url, self.pid = url, os.getpid()
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()  # bound to self.loop on first use
        self.pending = 0
        self.idle = threading.Condition()
        self.nc = self.js = None
        self.ready_streams: set[str] = set()
        self.warned = False
        self.loop = asyncio.new_event_loop()
        self.drainer = self.loop.create_task(self._drain())  # runs once the thread runs the loop
        self.thread = threading.Thread(target=self._run, name="tslcd-events", daemon=True)
        self.thread.start()

    def put(self, subject: str, data: bytes) -> None:
        with self.idle:
            self.pending += 1
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (subject, data))

    def flush(self, timeout: float) -> bool:
        with self.idle:
            return self.idle.wait_for(lambda: self.pending == 0, timeout)

    def call(self, coro, timeout: float):
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop)
        try:
            return future.result(timeout + 1)
        except (TimeoutError, asyncio.TimeoutError, OSError) as exc:
            raise ConnectionError(f"NATS at {self.url} did not answer: {exc or type(exc).__name__}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("nats"):
                raise ConnectionError(f"NATS at {self.url}: {exc or type(exc).__name__}") from None
            raise

    def close(self) -> None:
        """Stop the thread (after what is queued went out) and the connection; used when the URL changes."""
        async def _close():
            self.drainer.cancel()
            try:
                await self.drainer
            except asyncio.CancelledError:
                pass
            if self.nc is not None and not self.nc.is_closed:
                await self.nc.close()
            self.loop.stop()

        self.flush(2.0)
        asyncio.run_coroutine_threadsafe(_close(), self.loop)

    async def jetstream(self):
        import nats

        if self.nc is None or self.nc.is_closed:
            self.nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=3,
                                         allow_reconnect=True, name="tslcd")
            self.js = self.nc.jetstream(timeout=3)
            self.ready_streams.clear()
        for name, subjects in _streams.items():
            if name not in self.ready_streams:
                await self._ensure_stream(name, subjects)
                self.ready_streams.add(name)
        return self.js

    async def _ensure_stream(self, name: str, subjects: tuple[str, ...]) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self.js.stream_info(name)
        except NotFoundError:
            await self.js.add_stream(name=name, subjects=list(subjects))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    async def _drain(self) -> None:
        while True:
            subject, data = await self.queue.get()
            try:
                js = await self.jetstream()
                await js.publish(subject, data)
                self.warned = False
            except Exception as exc:  # the witness is best effort; the log says what it missed
                if not self.warned:
                    log.warning("NATS at %s: event %s not published: %s", self.url, subject, exc or type(exc).__name__)
                    self.warned = True
                self.nc = None if self.nc is None or self.nc.is_closed else self.nc
            finally:
                with self.idle:
                    self.pending -= 1
                    self.idle.notify_all()


_current: _Publisher | None = None


def _publisher(url: str) -> _Publisher:
    global _current
    with _lock:
        if _current is None or _current.url != url or _current.pid != os.getpid():
            if _current is not None and _current.pid == os.getpid():
                _current.close()
            _current = _Publisher(url)
        return _current


atexit.register(flush, 3.0)
