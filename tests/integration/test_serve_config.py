"""capstan serve's configuration: flags, CAPSTAN_* variables (a flag wins), the generated
admin key, and clear refusals of bad options."""
import os
import re
import stat
import subprocess

import pytest

from conftest import CAPSTAN, run_capstan
from daemon import Daemon, free_port_range


def test_generated_admin_key_is_printed_once_and_kept(tmp_path):
    data = tmp_path / "data"
    lo, hi = free_port_range()
    proc = subprocess.Popen([CAPSTAN, "serve", "--data", str(data), "--http", "127.0.0.1:0",
                             "--rtp-ports", f"{lo}-{hi}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        first = proc.stdout.readline() + proc.stdout.readline() + proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    key = re.search(r"shown only now\): (\S+)", first).group(1)
    path = data / "api-key"
    assert path.read_text().strip() == f"{key}:admin"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert f"Bearer {key}" in first          # the example request works as printed
    # the next start uses the same key and does not print it again
    d = Daemon(data, ports=(lo, hi))
    d.extra = []
    proc = subprocess.Popen([CAPSTAN, "serve", "--data", str(data), "--http", "127.0.0.1:0",
                             "--rtp-ports", f"{lo}-{hi}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+)", line).group(1)
        second = line + proc.stdout.readline()
        assert key not in second
        d.url = url
        assert d.call("PUT", "/rooms/k", {}, key=key)[0] == 201
        assert d.call("PUT", "/rooms/k", {}, key="wrong-key-wrong-key")[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_environment_configures_and_flags_win(tmp_path):
    lo, hi = free_port_range()
    env = {"CAPSTAN_API_KEY": "env-key-0123456789abcdef:viewer,env-sfu-key-0123456789ab:sfu",
           "CAPSTAN_RTP_PORTS": f"{lo}-{hi}", "CAPSTAN_RTP_ADVERTISE": "192.0.2.7"}
    d = Daemon(tmp_path / "data", env=env)
    d.extra = []
    # keys from the environment only: drop the fixture's own --api-key flags
    cmd_keys = ["--data", d.data_dir, "--http", "127.0.0.1:0"]
    full_env = dict(os.environ, **env)
    proc = subprocess.Popen([CAPSTAN, "serve", *cmd_keys], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=full_env)
    try:
        d.url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)
        assert d.call("PUT", "/rooms/e", {}, key="env-key-0123456789abcdef")[0] == 403
        assert d.call("PUT", "/rooms/e", {}, key="env-sfu-key-0123456789ab")[0] == 201
        rec = d.call("POST", "/rooms/e/recordings", {"requester_id": "x"}, key="env-sfu-key-0123456789ab")[1]
        assert rec["rtp"]["host"] == "192.0.2.7"
        assert lo <= rec["rtp"]["udp_port"] <= hi
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # a flag replaces the variable
    d2 = Daemon(tmp_path / "data2", env={"CAPSTAN_RTP_ADVERTISE": "192.0.2.7"},
                extra=["--rtp-advertise", "198.51.100.9"]).start()
    try:
        d2.ok("PUT", "/rooms/f", {})
        assert d2.ok("POST", "/rooms/f/recordings", {"requester_id": "x"})["rtp"]["host"] == "198.51.100.9"
    finally:
        d2.stop()


@pytest.mark.parametrize("args,message", [
    (["--http", "nonsense"], "--http takes HOST:PORT"),
    (["--rtp-ports", "9000-100"], "--rtp-ports takes LO-HI"),
    (["--api-key", "short:admin"], "at least 16 characters"),
    (["--api-key", "long-enough-key-123456:root"], "role must be admin, sfu, worker or viewer"),
    (["--fsync-ms", "0"], "--fsync-ms takes a number"),
    (["--webhook", "ftp://x"], "--webhook takes an http:// or https:// URL"),
    (["--log-level", "loud"], "--log-level takes"),
    (["--bogus"], "unknown or incomplete option"),
    (["--storage", "s3:///prefix"], "bad bucket name"),
    (["--storage", "s3://bucket/p?endpoint=ftp://x&access_key=a&secret_key=b"], "endpoint must be http://"),
    (["--storage", "s3://bucket/p?bogus=1&access_key=a&secret_key=b"], "unknown S3 URL parameter 'bogus'"),
])
def test_bad_options_are_refused(tmp_path, args, message):
    proc = run_capstan("serve", "--data", tmp_path / "d", *args, check=False, timeout=20)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.startswith("capstan serve: ")


def test_serve_help():
    assert run_capstan("serve", "--help").stdout.startswith("usage: capstan serve")


def test_http_port_in_use_is_a_clear_error(tmp_path):
    d = Daemon(tmp_path / "a").start()
    try:
        port = d.url.rsplit(":", 1)[1]
        lo, hi = free_port_range()
        proc = run_capstan("serve", "--data", tmp_path / "b", "--http", f"127.0.0.1:{port}",
                           "--rtp-ports", f"{lo}-{hi}", "--api-key", "some-key-0123456789ab:admin",
                           check=False, timeout=20)
        assert proc.returncode == 1 and "cannot listen on" in proc.stderr
    finally:
        d.stop()
