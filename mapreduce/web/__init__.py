"""The live status page, its JSON API and /metrics, served from a thread beside the coordinator's
loop (server.py), from the snapshots the loop publishes (coordinator/snapshot.py). The page itself
(static/) is plain HTML, CSS and JavaScript shipped in the package: no CDN, no build step."""

from __future__ import annotations

import sys

from ..coordinator.snapshot import Publisher
from ..errors import MapReduceError
from .server import StatusServer, check_http_bind, parse_http_address

__all__ = ["StatusServer", "check_http_bind", "parse_http_address", "serve_status"]


def serve_status(http: str | None, token: str | None = None, command: str = "coordinator"):
    """Serve the status page on `http` (HOST:PORT, or PORT on loopback) for the coordinators
    handed its `publisher` (`coordinator.monitor = server.publisher`), and say where on stderr;
    None without `http`. A one-paragraph error when the address is refused or taken."""
    if not http:
        if token:
            raise MapReduceError("--http-token guards the status page: give --http too.")
        return None
    host, port = parse_http_address(http)
    server = StatusServer(Publisher(), host, port, token)
    print(f"mapreduce {command}: status page on {server.url}", file=sys.stderr, flush=True)
    return server
