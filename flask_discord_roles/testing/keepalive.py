"""A small threaded WSGI server that keeps HTTP/1.1 connections open, as Discord's API does.

Werkzeug's development server closes every connection (it cannot tell where an unread request body
ends), so against it each call of a client costs a TCP connect that Discord would not charge, and the
server a thread per call. Here every request body is read in full by its Content-Length before the app
runs, so the next request on the connection starts where this one ended. Bodies without a length
(chunked uploads, which no Discord client sends) are refused with 411 and the connection closed.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["IDLE_SECONDS", "KeepAliveServer", "WSGIApp"]

IDLE_SECONDS = 30.0
"""How long a kept-alive connection may sit idle before the server closes it."""

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# WSGI gives these two headers their own keys (CONTENT_TYPE, CONTENT_LENGTH), never HTTP_*.
_UNQUOTED_HEADERS = {"CONTENT_TYPE", "CONTENT_LENGTH"}


class KeepAliveServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves ``app`` on ``(host, port)``; :meth:`close_connections` ends the kept-alive ones."""

    daemon_threads = True
    request_queue_size = 1024  # hundreds of concurrent clients must not see refused connections

    def __init__(self, address: tuple[str, int], app: WSGIApp) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def track(self, connection: socket.socket, *, is_open: bool) -> None:
        with self._lock:
            if is_open:
                self._open.add(connection)
            else:
                self._open.discard(connection)

    def close_connections(self) -> None:
        """Shut every open connection down, so no handler thread outlives the server."""
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    # The status line and headers go out in one write and the body in the next. On a kept-alive
    # connection Nagle's algorithm holds that second write until the client acknowledges the first, and
    # the client delays its acknowledgement by up to 40 ms: every call after a connection's first would
    # cost 40 ms that Discord does not charge (and most of a test's time against the fake).
    disable_nagle_algorithm = True
    server: KeepAliveServer

    def handle(self) -> None:
        self.server.track(self.connection, is_open=True)
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away (or idled out): nothing to answer
        finally:
            self.server.track(self.connection, is_open=False)

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self.send_error(411, "Length Required")
            return
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        status, headers, chunks = _call(self.server.app, self._environ(body, length))
        code, _, reason = status.partition(" ")
        # Not send_response(): it adds a Date of its own, and the app's (Discord's clock, stamped when
        # the request was counted) must be the only one.
        self.send_response_only(int(code), reason or None)
        self.send_header("Server", self.version_string())
        names = {name.lower() for name, _ in headers}
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        for name, value in headers:
            self.send_header(name, value)
        payload = b"".join(chunks)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _environ(self, body: bytes, length: str) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            # WSGI strings are the raw bytes as latin-1 (PEP 3333).
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": length,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key[5:] in _UNQUOTED_HEADERS:
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log lines in the test output


def _call(app: WSGIApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Run ``app`` once; its status line, headers and body chunks."""
    answer: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"], answer["headers"] = status, headers
        return chunks.append  # the legacy write() callable

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], chunks
