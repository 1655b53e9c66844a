"""A real redis-server for tests: started on a free loopback port with persistence off
(--save '' --appendonly no) in its own folder, and a tiny RESP client (enough for the
tests to look at streams and hashes) so no Python Redis package is needed."""
import os
import socket
import subprocess
import time


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisServer:
    def __init__(self, root):
        self.root = str(root)
        self.port = free_tcp_port()
        self.proc = None
        self.log_path = os.path.join(self.root, "redis.log")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.root],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {open(self.log_path).read()[-2000:]}")
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # ---- RESP ----

    def command(self, *args):
        """One command on a fresh connection; the reply as Python values."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += f"${len(a)}\r\n".encode() + a + b"\r\n"
            s.sendall(out)
            return _read(s.makefile("rb"))

    def hgetall(self, key):
        flat = self.command("HGETALL", key) or []
        return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        try:
            return data.decode()
        except UnicodeDecodeError:
            return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise RuntimeError(f"unexpected RESP reply {line!r}")
