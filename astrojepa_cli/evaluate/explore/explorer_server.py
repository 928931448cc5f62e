"""A local HTTP server for large explorer pages: the page at ``/``, each thumbnail at ``/thumb/<row>.png``,
encoded from the store when the browser first asks for it. It listens on 127.0.0.1 only."""

from __future__ import annotations

import errno
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.explore.thumbnails import ThumbnailReader

HOST = "127.0.0.1"
THUMB_PATH = re.compile(r"^/thumb/(\d+)\.png$")


def thumbnail_url(row: int) -> str:
    return f"/thumb/{row}.png"


class ExplorerServer(ThreadingHTTPServer):
    """The HTTP server with what it serves: ``page`` (set once it is built) and the store's thumbnails."""

    daemon_threads = True

    def __init__(self, port: int, thumbnails: ThumbnailReader) -> None:
        super().__init__((HOST, port), ExplorerHandler)
        self.page, self.thumbnails = b"", thumbnails

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def handle_error(self, request, client_address) -> None:
        """A browser that goes away mid-reply (a closed tab, a thumbnail no longer hovered) is routine, not an
        error: nothing is printed. Anything else is reported as http.server does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ExplorerHandler(BaseHTTPRequestHandler):
    server: ExplorerServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._send(self.server.page, "text/html; charset=utf-8", "no-cache")
        if path == "/favicon.ico":  # browsers ask; the page has none
            return self._send(b"", "image/x-icon", "max-age=86400", HTTPStatus.NO_CONTENT)
        match = THUMB_PATH.match(path)
        if match is None:
            return self.send_error(HTTPStatus.NOT_FOUND)
        try:
            png = self.server.thumbnails.png(int(match.group(1)))
        except IndexError:
            return self.send_error(HTTPStatus.NOT_FOUND)
        self._send(png, "image/png", "max-age=86400")

    def _send(self, body: bytes, content_type: str, cache: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        """Quiet: a page asks for hundreds of thumbnails."""


def explorer_server(thumbnails: ThumbnailReader, port: int) -> ExplorerServer:
    """A server bound to 127.0.0.1:``port`` (0: any free port), not yet serving; a busy port is a UserError."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535 (got {port})")
    try:
        return ExplorerServer(port, thumbnails)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise UserError(f"port {port} on {HOST} is not free ({exc.strerror}); choose another with --port") from None
        raise
