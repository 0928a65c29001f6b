"""Small local HTTP servers for tests: real sockets on 127.0.0.1, routes as functions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Send the body in this many pieces, pausing between them (a slow or hostile server).
    pieces: int = 1
    pause_s: float = 0.0


Route = Callable[[dict[str, list[str]], dict[str, str]], Reply]


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[str]:
    """Serve ``routes`` (path -> function of query and headers) and yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            route = routes.get(parts.path)
            reply = route(parse_qs(parts.query), dict(self.headers)) if route else Reply(404)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if value:  # an empty value leaves the header out (e.g. no Content-Length)
                    self.send_header(name, value)
            if "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            elif not reply.headers["Content-Length"]:
                self.close_connection = True
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                step = -(-len(reply.body) // max(reply.pieces, 1)) or 1
                for start in range(0, len(reply.body), step):
                    if start:
                        time.sleep(reply.pause_s)
                    self.wfile.write(reply.body[start : start + step])
                    self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
