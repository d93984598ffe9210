"""The production gunicorn worker: requests buffered whole, then served one at a time.

`worker_class = "smsproject.buffering_worker.BufferingWorker"` (gunicorn.conf.py says why).

One thread reads every connection of the worker without blocking and keeps what each has sent;
only a request that is complete, headers and body, reaches the app, which runs in that same
thread, with no handoff to another. So a client that stalls in its headers or its body holds a
buffer, never the worker, and kept-alive connections cost nothing between requests.

Each request carries, in `environ[ARRIVED_AT]`, when it reached the server (time.monotonic()):
the kernel's own time of the request's last bytes (TCP_INFO), so that time spent waiting in the
listen queue or in a socket's buffer while the worker served others counts against the text's
deadline (conversations/webhook.py).

The worker stops when its master dies (PR_SET_PDEATHSIG), after accepting what is already
queued and closing its listener, so a master started again can bind at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import selectors
import signal
import socket
import struct
import sys
import time
from datetime import datetime
from typing import Any

from gunicorn import http, util
from gunicorn.http import wsgi
from gunicorn.workers import base

ARRIVED_AT = "smsproject.arrived_at"
# Seconds a connection may stay silent in the middle of a request, or while taking its answer.
REQUEST_TIMEOUT = 10.0
# A stopping worker keeps idle kept-alive connections this long, for a request already on
# its way, which it answers with "Connection: close".
STOP_LINGER = 1.0
MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
# struct tcp_info: tcpi_last_data_recv, milliseconds since the last data came in.
_TCP_INFO_SIZE, _LAST_DATA_RECV = 104, 52
_PR_SET_PDEATHSIG = 1


class Connection:
    """A client connection and what it has sent that was not served yet."""

    def __init__(self, sock: socket.socket, client: Any, server: Any) -> None:
        self.sock = sock
        self.client = client
        self.server = server
        self.buffer = bytearray()
        self.continued = False  # "100 Continue" sent for the request being read
        self.expires = time.monotonic() + REQUEST_TIMEOUT


class BufferingWorker(base.Worker):
    def init_signals(self) -> None:
        super().init_signals()
        # Told by the kernel when the master dies, even by SIGKILL; the check after it
        # covers a master that died before this line.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != self.ppid:
            self.alive = False

    def run(self) -> None:
        self.connections: dict[int, Connection] = {}
        self.poller = selectors.DefaultSelector()
        self.poller.register(self.PIPE[0], selectors.EVENT_READ, self._wake)
        for listener in self.sockets:
            listener.setblocking(False)
            self.poller.register(listener, selectors.EVENT_READ, self._accept)
        self.accepting = True
        while self.alive:
            self.notify()
            self._serve_events(1.0)
            if len(self.connections) >= self.cfg.worker_connections and self.accepting:
                self._set_accepting(False)
            elif len(self.connections) < self.cfg.worker_connections and not self.accepting:
                self._set_accepting(True)
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
            self._expire(time.monotonic())
        self._stop()

    def _stop(self) -> None:
        """Take what is queued on the listeners, close them, answer what is under way."""
        for listener in self.sockets:
            if self.accepting:
                self.poller.unregister(listener)
            while self._accept(listener):
                pass
            listener.close()
        self.accepting = False
        linger_until = time.monotonic() + STOP_LINGER
        give_up = time.monotonic() + self.cfg.graceful_timeout
        while self.connections and time.monotonic() < give_up:
            self.notify()
            self._serve_events(0.1)
            now = time.monotonic()
            if now > linger_until:
                for conn in [conn for conn in self.connections.values() if not conn.buffer]:
                    self._close(conn)
            self._expire(now)
        for conn in list(self.connections.values()):
            self._close(conn)

    def _set_accepting(self, accepting: bool) -> None:
        for listener in self.sockets:
            if accepting:
                self.poller.register(listener, selectors.EVENT_READ, self._accept)
            else:
                self.poller.unregister(listener)
        self.accepting = accepting

    def _serve_events(self, timeout: float) -> None:
        try:
            events = self.poller.select(timeout)
        except InterruptedError:
            return
        for key, _ in events:
            key.data(key.fileobj)

    def _wake(self, fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(fd, 64)

    def _accept(self, listener: Any) -> bool:
        try:
            sock, client = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        sock.setblocking(False)
        util.close_on_exec(sock)
        conn = Connection(sock, client, listener.getsockname())
        self.connections[sock.fileno()] = conn
        self.poller.register(sock, selectors.EVENT_READ, lambda _: self._read(conn))
        # Whatever came with the connection is served now, not on the next turn.
        self._read(conn)
        return True

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.buffer += data
        conn.expires = time.monotonic() + REQUEST_TIMEOUT
        while conn.sock.fileno() >= 0 and (request := self._complete_request(conn)) is not None:
            if not self._serve(conn, request):
                self._close(conn)
                return
            conn.expires = time.monotonic() + (self.cfg.keepalive if self.alive else STOP_LINGER)

    def _complete_request(self, conn: Connection) -> bytes | None:
        """The first whole request in the buffer, taken out of it; None until it is whole."""
        buffer = conn.buffer
        end = buffer.find(_HEAD_END)
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._refuse(conn, 431, "Request Header Fields Too Large")
            return None
        head = bytes(buffer[: end + 2])
        if _CHUNKED.search(head):
            self._refuse(conn, 411, "Length Required")
            return None
        match = _CONTENT_LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        if length > MAX_BODY:
            self._refuse(conn, 413, "Content Too Large")
            return None
        size = end + len(_HEAD_END) + length
        if len(buffer) < size:
            if not conn.continued and _EXPECT_CONTINUE.search(head):
                conn.continued = True
                self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        request = bytes(buffer[:size])
        del buffer[:size]
        return request

    def _serve(self, conn: Connection, data: bytes) -> bool:
        """Run the app on one whole request; whether the connection stays open."""
        arrived_at = _arrival(conn.sock)
        continued, conn.continued = conn.continued, False
        req = None
        conn.sock.settimeout(REQUEST_TIMEOUT)
        try:
            req = next(http.get_parser(self.cfg, iter([data]), conn.client))
            if continued:
                req._expected_100_continue = False  # Sent while the body was on its way.
            return self._handle_request(conn, req, arrived_at)
        except StopIteration:
            return False
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
            return False
        except Exception as error:
            self.handle_error(req, conn.sock, conn.client, error)
            return False
        finally:
            if conn.sock.fileno() >= 0:
                conn.sock.setblocking(False)

    def _handle_request(self, conn: Connection, req: Any, arrived_at: float) -> bool:
        """gunicorn's own request handling (its sync and gthread workers'), on a whole request."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            request_start = datetime.now()
            resp, environ = wsgi.create(req, conn.sock, conn.client, conn.server, self.cfg)
            environ[ARRIVED_AT] = arrived_at
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            if not self.alive or not self.cfg.keepalive:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - request_start)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp and resp.headers_sent:
                self.log.exception("Error handling request")
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")

    def _refuse(self, conn: Connection, status: int, reason: str) -> None:
        self._send(
            conn, f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()
        )
        self._close(conn)

    def _send(self, conn: Connection, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _expire(self, now: float) -> None:
        for conn in [conn for conn in self.connections.values() if conn.expires < now]:
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return
        self.connections.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        util.close(conn.sock)


def _arrival(sock: socket.socket) -> float:
    """When the request's last bytes reached this host, on the time.monotonic() clock."""
    now = time.monotonic()
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return now
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return now
    if len(info) < _LAST_DATA_RECV + 4:
        return now
    (age_ms,) = struct.unpack_from("I", info, _LAST_DATA_RECV)
    return now - age_ms / 1000


if sys.platform != "linux":  # pragma: no cover
    raise ImportError("BufferingWorker needs Linux (PR_SET_PDEATHSIG, TCP_INFO)")
