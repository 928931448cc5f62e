"""A real HTTP file server on 127.0.0.1 for download tests: Range requests and scripted faults."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves ``files`` ({"/name": bytes}) from a thread.

    ``faults`` is consumed one entry per request: an HTTP status (404, 500) to
    answer with, or ``"drop"`` to send half of the body and close the
    connection. ``ranges=False`` makes the server ignore Range headers, like
    some mirrors do; ``pace_s`` sends the body in eight pieces that far apart.
    ``requests`` records (path, Range header) of each request.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: list[int | str] = []
        self.ranges = True
        self.pace_s = 0.0
        self.requests: list[tuple[str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{name}"

    def __enter__(self) -> "FileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(owner: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            requested_range = self.headers.get("Range")
            owner.requests.append((self.path, requested_range))
            fault = owner.faults.pop(0) if owner.faults else None
            if isinstance(fault, int):
                self.send_error(fault)
                return
            body = owner.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", requested_range or "")
            if match and owner.ranges:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_error(416)
                    return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            payload = body[start:]
            if fault == "drop":
                payload = payload[: len(payload) // 2]
                self.close_connection = True
            piece = max(1, len(payload) // 8) if owner.pace_s else len(payload) or 1
            for start in range(0, len(payload), piece):
                self.wfile.write(payload[start : start + piece])
                self.wfile.flush()
                time.sleep(owner.pace_s)

    return Handler
