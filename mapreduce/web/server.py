"""The status page's HTTP server: the standard library's ThreadingHTTPServer on a thread of its
own, serving the publisher's latest immutable snapshot (coordinator/snapshot.py), the page's
static files (package data, no CDN) and /metrics. It never touches the coordinator's loop state.

    /                 the jobs and workers (static/index.html; app.js polls /api/status)
    /jobs/<id>        a job's tasks, attempts and timeline (same page; app.js polls the job)
    /api/status       JSON, as `mapreduce status --json`
    /api/jobs/<id>    JSON, a job's state with its tasks, attempts and partition sizes
    /metrics          Prometheus text format

Loopback only, unless a token is given: then every request for data (/api/, /metrics) must carry
it (`Authorization: Bearer TOKEN`, or `?token=TOKEN`, which the page passes on to its requests
and links); the page's own files are the package's, the same for everyone.
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from prometheus_client import CONTENT_TYPE_LATEST

from .. import security
from ..errors import MapReduceError

log = logging.getLogger("mapreduce.web")

DETAIL_WAIT_S = 3.0  # a job page's first request waits this long for the loop to build its table


def parse_http_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or 'PORT' -> (host, port); a one-paragraph error otherwise."""
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]") if sep else default_host
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        raise MapReduceError(
            f"--http '{text}' is not an address to serve the status page on: give PORT "
            f"(loopback) or HOST:PORT, e.g. 127.0.0.1:8080."
        ) from None
    return host or default_host, number


def check_http_bind(host: str, port: int, token: str | None) -> None:
    """Loopback only, unless a token guards the page (the same rule as the ZeroMQ bind)."""
    if token or security.is_local_address(f"tcp://{host}:{port}"):
        return
    raise MapReduceError(
        f"refusing to serve the status page on {host}:{port} without a token: it shows every "
        f"job's inputs, outputs, errors and task logs to whoever can reach that address. "
        f"Serve it on loopback (--http 127.0.0.1:{port}) and reach it through an SSH tunnel, "
        f"or pass --http-token TOKEN (a long random string): browsers then open "
        f"http://{host}:{port}/?token=TOKEN, and Prometheus sends 'Authorization: Bearer TOKEN'."
    )


class StatusServer:
    """Serves a Publisher's snapshots until `close()`."""

    def __init__(self, publisher, host: str, port: int, token: str | None = None):
        check_http_bind(host, port, token)
        self.publisher = publisher
        self.token = token
        handler = type("Handler", (_Handler,), {"server_of": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise MapReduceError(
                f"cannot serve the status page on {host}:{port}: {exc.strerror or exc}. "
                f"Choose a free port (--http HOST:PORT)."
            ) from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="mapreduce-web", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = str(host, "ascii") if isinstance(host, bytes) else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    # ---- what the handler asks --------------------------------------------------------------

    def job(self, job_id: str) -> bytes | None:
        """A job's JSON (None: no such job); a first look waits a moment for the loop to build
        its task table (the loop builds it only for jobs a page asked about lately)."""
        snapshot = self.publisher.current
        if job_id not in snapshot.jobs:
            return None
        self.publisher.want(job_id)
        deadline = time.monotonic() + DETAIL_WAIT_S
        while job_id not in snapshot.complete and time.monotonic() < deadline:
            time.sleep(0.05)
            snapshot = self.publisher.current
        return snapshot.jobs.get(job_id)


class _Handler(BaseHTTPRequestHandler):
    server_of: StatusServer
    server_version = "mapreduce"

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        server = self.server_of
        # The page's files are the package's, the same for everyone: the data needs the token.
        guarded = path.startswith("/api/") or path == "/metrics"
        if guarded and not self._authorized(url):
            self._send(401, b"a token is required: ?token=TOKEN or Authorization: Bearer\n")
            return
        if path == "/api/status":
            self._send(200, server.publisher.current.status, "application/json")
        elif path.startswith("/api/jobs/"):
            body = server.job(urllib.parse.unquote(path[len("/api/jobs/") :]))
            if body is None:
                self._send(404, b'{"error": "no such job here"}', "application/json")
            else:
                self._send(200, body, "application/json")
        elif path == "/metrics":
            self._send(200, server.publisher.metrics.text(), CONTENT_TYPE_LATEST)
        elif path == "/" or path.startswith("/jobs/"):
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        else:
            self._send(404, b"not found\n")

    def _authorized(self, url) -> bool:
        token = self.server_of.token
        if not token:
            return True
        given = urllib.parse.parse_qs(url.query).get("token", [""])[0]
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer ") :].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def _static(self, name: str) -> None:
        if "/" in name or name.startswith("."):
            self._send(404, b"not found\n")
            return
        try:
            body = resources.files(__package__).joinpath("static", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            self._send(404, b"not found\n")
            return
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        self._send(200, body, kind)

    def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
