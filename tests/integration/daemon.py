"""A capstan serve process for tests: started on free ports with its own data folder and
keys, driven through its HTTP API, stopped (or killed) by the test."""
import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from conftest import CAPSTAN

ADMIN_KEY = "test-admin-key-0123456789"
SFU_KEY = "test-sfu-key-0123456789ab"
VIEWER_KEY = "test-viewer-key-0123456789"


def free_port_range(count=40):
    """A range of `count` ports free for UDP and TCP right now."""
    for _ in range(100):
        lo = random.randrange(30000, 60000 - count)
        ok = True
        for p in range(lo, lo + count):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                finally:
                    s.close()
            if not ok:
                break
        if ok:
            return lo, lo + count - 1
    raise RuntimeError("no free port range")


RUNNING = []


class Daemon:
    def __init__(self, data_dir, extra=(), ports=None, env=None):
        self.data_dir = str(data_dir)
        self.ports = ports or free_port_range()
        self.extra = list(extra)
        self.env = env
        self.proc = None
        self.url = None
        self.log_path = os.path.join(self.data_dir, "serve.log")

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        cmd = [CAPSTAN, "serve", "--data", self.data_dir, "--http", "127.0.0.1:0",
               "--rtp-ports", f"{self.ports[0]}-{self.ports[1]}",
               "--api-key", f"{ADMIN_KEY}:admin", "--api-key", f"{SFU_KEY}:sfu",
               "--api-key", f"{VIEWER_KEY}:viewer", *self.extra]
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.search(r"serving on (http://[^ ]+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"capstan serve did not start: {line!r}\n{open(self.log_path).read()}")
        self.url = m.group(1)
        RUNNING.append(self)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc.poll() is None

    def call(self, method, path, body=None, key=SFU_KEY, raw=None):
        """(status, parsed JSON or text) of one API request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ok(self, method, path, body=None, key=SFU_KEY, expect=(200, 201)):
        status, reply = self.call(method, path, body, key)
        assert status in expect, f"{method} {path} -> {status} {reply}"
        return reply

    def metrics(self):
        status, text = self.call("GET", "/metrics", key=None)
        assert status == 200
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def recording_dir(self, room_id, recording_id):
        return os.path.join(self.data_dir, "rooms", room_id, recording_id)


def wait_for(predicate, timeout=10, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()
