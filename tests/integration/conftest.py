"""Shared fixtures for capstan's integration tests: the built binary, free loopback ports,
and real peers (tcpdump captures, GStreamer and ffmpeg senders, tshark as judge)."""
import os
import re
import socket
import shutil
import subprocess
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CAPSTAN_BUILD", os.path.join(ROOT, "build"))
CAPSTAN = os.path.join(BUILD, "capstan")


@pytest.fixture(scope="session")
def capstan_bin():
    assert os.access(CAPSTAN, os.X_OK), f"build capstan first ({CAPSTAN} missing)"
    return CAPSTAN


def run_capstan(*args, check=True, timeout=300):
    proc = subprocess.run([CAPSTAN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"capstan {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def free_udp_ports(count, family=socket.AF_INET):
    """`count` consecutive UDP ports that are free on loopback now."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    for _ in range(200):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        base = s.getsockname()[1]
        s.close()
        if base + count > 65535 or base < 1024:
            continue
        socks = []
        try:
            for p in range(base, base + count):
                t = socket.socket(family, socket.SOCK_DGRAM)
                t.bind((host, p))
                socks.append(t)
            return list(range(base, base + count))
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free UDP port range")


class Capture:
    """tcpdump on loopback, proven to be capturing before a sender begins: a probe datagram
    to a port of its own must show up in the file first. stop() reports
    what the kernel dropped, so a test never blames capstan for packets tcpdump missed."""

    def __init__(self, path, bpf):
        self.path = path
        self.dropped = 0
        # The probe goes to a port of its own, so it never mixes with what is judged.
        self.probe_port = free_udp_ports(1)[0]
        bpf = f"({bpf}) or (udp and dst port {self.probe_port})"
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-B", "65536", "-s", "0", "-w", path, bpf],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 15
        line = ""
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if "listening on" in line or not line:
                break
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"tcpdump did not start: {line}")
        port = self.probe_port
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        deadline = time.time() + 15
        try:
            while time.time() < deadline:
                probe.sendto(b"capture probe", ("127.0.0.1", port))
                time.sleep(0.1)
                if os.path.exists(path) and os.path.getsize(path) > 24:
                    break
            else:
                raise RuntimeError("tcpdump never captured its probe")
        finally:
            probe.close()

    def stop(self):
        time.sleep(0.5)
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        m = re.search(r"(\d+) packets? dropped by kernel", err or "")
        self.dropped = int(m.group(1)) if m else 0
        assert self.dropped == 0, f"tcpdump dropped {self.dropped} packets: the capture cannot judge"


@pytest.fixture
def capture(tmp_path):
    started = []

    def start(bpf, name="capture.pcap"):
        c = Capture(str(tmp_path / name), bpf)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()


def tshark_fields(pcap, decode_as, fields, extra=()):
    """Rows of tshark -T fields for every frame, with the given decode-as rules."""
    cmd = ["tshark", "-n", "-r", str(pcap)]
    for port, proto in decode_as:
        cmd += ["-d", f"udp.port=={port},{proto}"]
    cmd += list(extra)
    cmd += ["-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def run_sender(cmd, seconds):
    """Runs a real sender for about `seconds`. GStreamer live pipelines sometimes stay up
    after EOS; a sender still running well past its time is stopped, which is fine since
    tests judge what the capture saw, not how the sender exited."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=seconds + 15)
    except subprocess.TimeoutExpired:
        proc.send_signal(2)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return
    if proc.returncode != 0:
        raise AssertionError(f"sender failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test():
    """A failing test must not leave a capstan serve running behind it."""
    yield
    import daemon
    while daemon.RUNNING:
        d = daemon.RUNNING.pop()
        if d.proc and d.proc.poll() is None and not getattr(d, "module_scoped", False):
            d.proc.kill()
            d.proc.wait()


# ---- storage backends: the same media tests on the local folder and on S3 ----

class Storage:
    """Where a test's recording is read from and its outputs written: "local" (the
    recording folder, outputs into a folder) or "s3" (the recording put into a real S3
    server with `capstan storage put`, `capstan convert --in s3://... --out s3://...`, and
    the outputs read back from the server's own files). Either way the test judges local
    files, so one test body covers both."""

    def __init__(self, name, s3=None):
        self.name = name
        self.s3 = s3

    def _put(self, rec_dir):
        key = f"{self.name}-{uuid.uuid4().hex[:12]}/rooms/r/rec"
        url = self.s3.url(key)
        for dirpath, _, names in os.walk(rec_dir):
            for name in names:
                path = os.path.join(dirpath, name)
                run_capstan("storage", "put", url, os.path.relpath(path, rec_dir), path)
        return key

    def convert(self, rec_dir, out_dir, *args, check=True):
        """capstan convert --in REC --out OUT ARGS; the outputs end up in out_dir."""
        if self.s3 is None:
            return run_capstan("convert", "--in", rec_dir, "--out", out_dir, *args, check=check)
        key = self._put(rec_dir)
        proc = run_capstan("convert", "--in", self.s3.url(key), "--out", self.s3.url(key + "-out"), *args,
                           check=check)
        from s3server import copy_objects
        copy_objects(self.s3.objects(key + "-out"), str(out_dir))
        return proc

    def compose(self, rec_dir, out_file, *args, check=True):
        """capstan convert --in REC --compose-out FILE ARGS; the composite ends up at out_file."""
        if self.s3 is None:
            return run_capstan("convert", "--in", rec_dir, "--compose-out", out_file, *args, check=check)
        key = self._put(rec_dir)
        if "--format" not in args:   # the local file name picks the container; here, say it
            args = (*args, "--format", os.path.splitext(str(out_file))[1][1:])
        proc = run_capstan("convert", "--in", self.s3.url(key), "--out", self.s3.url(key + "-out"), *args,
                           check=check)
        objects = self.s3.objects(key + "-out")
        composites = [k for k in objects if k.startswith("composite.")]
        if proc.returncode == 0:
            assert len(composites) == 1, sorted(objects)
            shutil.copyfile(objects[composites[0]], str(out_file))
        return proc


@pytest.fixture(scope="session")
def s3_backend_server(tmp_path_factory):
    """One S3 server for every test parameterized by storage (started only if one runs)."""
    from s3server import S3Server
    server = S3Server(tmp_path_factory.mktemp("s3-backend")).start()
    yield server
    server.cleanup()


@pytest.fixture(params=["local", "s3"])
def storage(request):
    if request.param == "local":
        return Storage("local")
    return Storage("s3", request.getfixturevalue("s3_backend_server"))
