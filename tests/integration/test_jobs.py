"""Jobs end to end with real peers: recordings made by `capstan serve` from real GStreamer
senders, converted by job workers, the outputs judged by ffprobe/ffmpeg, the hooks by a
webhook receiver that checks signatures, progress by GET /events.

- SQLite (the embedded default): workers inside serve; the job API, composition and
  export routes with their errors; a kill -9 of serve mid-job, the job reclaimed after the
  restart; auto-convert when a room closes.
- Redis + S3: serve queues, two `capstan worker` processes run 10 mixed jobs, each ready
  exactly once with its hooks exactly once, while one worker is killed -9 mid-job (its job
  is reclaimed after the visibility timeout) and another is frozen past its lease (its
  late result is discarded); custom_s3 outputs land where the request said."""
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import CAPSTAN, run_capstan, run_sender
from daemon import ADMIN_KEY, SFU_KEY, VIEWER_KEY, Daemon, wait_for
from redis import RedisServer
from s3server import S3Server
from senders import PT, gst_peer
from test_webhooks import SECRET, Receiver

WORKER_KEY = "test-worker-key-0123456789"
VISIBILITY_MS = 3000


# ---- helpers ----

def record(d, room, seconds=4):
    """One real recording of a VP8+Opus peer (GStreamer through rtpbin); returns the stopped
    recording's view."""
    d.ok("PUT", f"/rooms/{room}", {"room_name": room})
    d.ok("POST", f"/rooms/{room}/peers", {"peer_id": "ann", "display_name": "Ann"})
    for pid, kind, codec, ssrc in (("v", "video", "vp8", 0x1001), ("a", "audio", "opus", 0x1002)):
        d.ok("POST", f"/rooms/{room}/producers",
             {"producer_id": pid, "peer_id": "ann", "kind": kind, "codec": codec, "payload_type": PT[codec],
              "ssrc": ssrc, "clock_rate": 48000 if kind == "audio" else 90000,
              "channels": 2 if kind == "audio" else 0})
    rec = d.ok("POST", f"/rooms/{room}/recordings", {"requester_id": "ann"})
    run_sender(gst_peer(rec["rtp"]["udp_port"], "vp8", True, 0x1001, 0x1002, seconds), seconds)
    return rec


def stop(d, rec):
    return d.ok("POST", f"/recordings/{rec['recording_id']}/stop")


def wait_job(d, job_id, timeout=120, states=("ready", "failed")):
    def done():
        status, reply = d.call("GET", f"/api/convert/job/{job_id}", key=VIEWER_KEY)
        assert status == 200, reply
        return reply["data"] if reply["data"]["status"] in states else None
    job = wait_for(done, timeout=timeout, step=0.2)
    assert job, f"job {job_id} never reached {states}"
    return job


def probe(path, stream):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", stream,
                          "-show_entries", "stream=codec_name,nb_read_frames:format=duration", "-of", "json",
                          path], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def clean_decode(path):
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def job_events(rx):
    """{job_id: [event name, ...]} of the Compose hooks acknowledged, each checked signed.
    Delivery is at least once: a redelivery (same X-Capstan-Event-Id, e.g. after the
    recorder was killed before it noted the acknowledgement) counts once, as a receiver
    that dedupes on the id sees it."""
    seen = {}
    ids = set()
    for headers, body in rx.acked():
        assert headers["X-Capstan-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body,
                                                                      hashlib.sha256).hexdigest()
        event = json.loads(body)
        assert event["id"] == headers["X-Capstan-Event-Id"]
        if event["id"] in ids:
            continue
        ids.add(event["id"])
        compose = event["event"].get("Compose")
        if compose:
            (name, _), = compose["event"].items()
            seen.setdefault(compose["job_id"], []).append(name)
    return seen


def hook_bodies(rx, job_id, name):
    out = []
    ids = set()
    for headers, body in rx.acked():
        if headers["X-Capstan-Event-Id"] in ids:
            continue
        ids.add(headers["X-Capstan-Event-Id"])
        compose = json.loads(body)["event"].get("Compose")
        if compose and compose["job_id"] == job_id and name in compose["event"]:
            out.append(compose["event"][name])
    return out


class EventStream:
    """GET /events read on a thread: every `data:` line parsed."""

    def __init__(self, url, key=VIEWER_KEY, query=""):
        self.events = []
        req = urllib.request.Request(f"{url}/events{query}", headers={"Authorization": f"Bearer {key}"})
        self.resp = urllib.request.urlopen(req, timeout=300)
        assert self.resp.status == 200
        assert self.resp.headers["Content-Type"] == "text/event-stream"
        self.first = self.resp.readline()   # the stream's opening line: subscribed
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
        except (OSError, ValueError):
            pass

    def of_job(self, job_id):
        out = []
        for e in list(self.events):
            c = e["event"].get("Compose")
            if c and c["job_id"] == job_id:
                (name, body), = c["event"].items()
                out.append((name, body))
        return out

    def close(self):
        # Shut the socket first: the reader thread holds the response's buffer until data comes.
        try:
            self.resp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.thread.join(timeout=10)
        self.resp.close()


# ---- SQLite: workers inside serve ----

@pytest.fixture
def hooked(tmp_path):
    rx = Receiver(fail_first=0)
    d = Daemon(tmp_path / "data", ["--webhook", rx.url, "--webhook-secret", SECRET, "--api-key",
                                   f"{WORKER_KEY}:worker", "--visibility-ms", str(VISIBILITY_MS)]).start()
    yield d, rx
    d.stop()
    rx.close()


def test_convert_jobs_inside_serve_hooks_and_events(hooked):
    d, rx = hooked
    rec = record(d, "sq")
    assert stop(d, rec)["state"] == "stopped"
    path = rec["path"]
    stream = EventStream(d.url, query="?since=0")
    assert stream.first.startswith(b"retry:")

    status, reply = d.call("POST", "/api/convert/job", {"record_path": path, "transmux": {}}, key=WORKER_KEY)
    assert status == 200 and reply["status"] is True, reply
    transmux_id = reply["data"]["job_id"]
    assert list(reply) == ["status", "data"] and list(reply["data"]) == ["job_id"]
    status, reply = d.call("POST", "/api/convert/job",
                           {"record_path": path, "compose": {"audio": True, "video": True}}, key=ADMIN_KEY)
    assert status == 200, reply
    compose_id = reply["data"]["job_id"]

    job = wait_job(d, transmux_id)
    assert job["status"] == "ready" and job["kind"] == "transmux" and job["progress"] == 1, job
    assert job["recording_id"] == rec["recording_id"] and job["attempts"] == 1
    peers = job["result"]["transmux"]["peers"]
    tracks = peers["ann"]["sessions"]["0"]["track"]
    assert set(tracks) == {"ann-video", "ann-audio"}
    for name, track in tracks.items():
        key = track["timeline"][0]["path"]
        assert key.startswith(f"{path}/processed/tracks/"), key
        file = os.path.join(d.data_dir, key)
        ok, errors = clean_decode(file)
        assert ok, errors
    assert json.loads(job["result"]["transmux"]["metadata_json"])["room"]["room_id"] == "sq"

    job = wait_job(d, compose_id, timeout=240)
    assert job["status"] == "ready", job
    uri = job["result"]["compose"]["media_uri"]
    assert uri == f"{path}/processed/composite.mp4", uri
    composite = os.path.join(d.data_dir, uri)
    ok, errors = clean_decode(composite)
    assert ok, errors
    info = probe(composite, "v:0")
    assert info["streams"][0]["codec_name"] == "h264" and int(info["streams"][0]["nb_read_frames"]) > 60

    # a job about a recording that is not there fails, with its reason
    status, reply = d.call("POST", "/api/convert/job", {"record_path": "rooms/none/nothing", "transmux": {}},
                           key=WORKER_KEY)
    assert status == 200
    bad_id = reply["data"]["job_id"]
    job = wait_job(d, bad_id)
    assert job["status"] == "failed" and "no recording at 'rooms/none/nothing'" in job["error"], job

    # hooks: every job Started once and Completed (or Failed) once, signed
    want = {transmux_id: ["Started", "Completed"], compose_id: ["Started", "Completed"],
            bad_id: ["Started", "Failed"]}
    assert wait_for(lambda: all(job_events(rx).get(j) == w for j, w in want.items()), timeout=30), job_events(rx)
    (completed,) = hook_bodies(rx, transmux_id, "Completed")
    assert completed["transmux"]["peers"] == peers
    (completed,) = hook_bodies(rx, compose_id, "Completed")
    assert completed["compose"]["media_uri"] == uri
    (failed,) = hook_bodies(rx, bad_id, "Failed")
    assert "no recording" in failed["error"]

    # GET /events saw the same jobs start, progress and complete, in that order
    assert wait_for(lambda: stream.of_job(compose_id) and stream.of_job(compose_id)[-1][0] == "Completed",
                    timeout=30)
    names = [n for n, _ in stream.of_job(compose_id)]
    assert names[0] == "Started" and names[-1] == "Completed" and "Progress" in names, names
    progress = [b["progress"] for n, b in stream.of_job(compose_id) if n == "Progress"]
    assert progress == sorted(progress) and all(0 <= p <= 1 for p in progress), progress
    # the recording's own events are on the same stream
    kinds = {list(e["event"])[0] for e in stream.events}
    assert {"Record", "Compose"} <= kinds, kinds
    stream.close()
    only = EventStream(d.url, query=f"?since=0&job_id={bad_id}")
    assert wait_for(lambda: [n for n, _ in only.of_job(bad_id) if n != "Progress"] == ["Started", "Failed"],
                    timeout=10), only.events
    assert all(list(e["event"]) == ["Compose"] for e in only.events)
    only.close()


def test_job_routes_refuse_bad_requests(hooked):
    d, _ = hooked
    cases = [
        ({"transmux": {}}, "record_path"),
        ({"record_path": "rooms/a/b"}, "at least one of transmux or compose"),
        ({"record_path": "../etc/passwd", "transmux": {}}, "record_path"),
        ({"record_path": "rooms/a/b", "transmux": []}, "transmux must be an object"),
        ({"record_path": "rooms/a/b", "compose": {"audio": False, "video": False}}, "audio or video"),
        ({"record_path": "rooms/a/b", "compose": {"audio": "yes"}}, "true or false"),
        ({"record_path": "rooms/a/b", "transmux": {"custom_s3": "ftp://x/y"}}, "custom_s3"),
        ({"record_path": "rooms/a/b", "transmux": {}, "priority": 1}, "unknown field 'priority'"),
    ]
    for body, words in cases:
        status, reply = d.call("POST", "/api/convert/job", body, key=WORKER_KEY)
        assert status == 400 and reply["error"]["code"] == 1003 and words in reply["error"]["message"], (body, reply)
    status, reply = d.call("POST", "/api/convert/job", raw=b"{nope", key=WORKER_KEY)
    assert status == 400 and reply["error"]["code"] == 1003
    status, reply = d.call("POST", "/api/convert/job", {"record_path": "rooms/a/b", "transmux": {}}, key=None)
    assert status == 401 and reply["error"]["code"] == 1001
    for key in (SFU_KEY, VIEWER_KEY):
        status, reply = d.call("POST", "/api/convert/job", {"record_path": "rooms/a/b", "transmux": {}}, key=key)
        assert status == 403 and reply["error"]["code"] == 1002
    status, reply = d.call("GET", "/api/convert/job/job_doesnotexist", key=VIEWER_KEY)
    assert status == 404 and reply["error"]["code"] == 6001
    status, reply = d.call("DELETE", "/api/convert/job/job_x", key=ADMIN_KEY)
    assert status == 405
    status, reply = d.call("GET", "/events", key=None)
    assert status == 401
    # composition and export need a recording, a valid Composition State, a stopped recording
    status, reply = d.call("PUT", "/recordings/rec_nope/composition", {"layout": "grid"})
    assert status == 404 and reply["error"]["code"] == 3003
    status, reply = d.call("POST", "/recordings/rec_nope/export", {})
    assert status == 404 and reply["error"]["code"] == 3003
    d.ok("PUT", "/rooms/live", {})
    d.ok("POST", "/rooms/live/peers", {"peer_id": "p"})
    rec = d.ok("POST", "/rooms/live/recordings", {"requester_id": "p"})
    rid = rec["recording_id"]
    status, reply = d.call("POST", f"/recordings/{rid}/export", {})
    assert status == 409 and reply["error"]["code"] == 3004
    status, reply = d.call("GET", f"/recordings/{rid}/composition", key=VIEWER_KEY)
    assert status == 404 and reply["error"]["code"] == 6002
    status, reply = d.call("PUT", f"/recordings/{rid}/composition", {"layout": "mosaic"})
    assert status == 400 and reply["error"]["code"] == 6005, reply
    status, reply = d.call("PUT", f"/recordings/{rid}/composition", {"layout": "grid"}, key=VIEWER_KEY)
    assert status == 403
    stop(d, rec)
    for body, words in (({"format": "avi"}, "format"), ({"preset": "ultra"}, "preset"),
                        ({"composition_id": "v7"}, "latest"), ({"thumbnail_seconds": -1}, "thumbnail_seconds")):
        status, reply = d.call("POST", f"/recordings/{rid}/export", body)
        assert status == 400 and words in reply["error"]["message"], (body, reply)
    got = d.ok("GET", f"/recordings/{rid}", key=VIEWER_KEY)
    assert got["export_status"] is None and got["export"] == {"url": None}


def test_composition_then_export_from_the_saved_state(hooked):
    d, rx = hooked
    rec = record(d, "ex")
    stop(d, rec)
    rid = rec["recording_id"]
    state = {"layout": "speaker", "timeline": [{"t": 0, "type": "layout", "layout": "grid"},
                                               {"t": 1000, "type": "pin", "peer_id": "ann"}],
             "tracks": [{"peer_id": "ann", "muted": False}], "export": {"resolution": "640x360", "fps": 15}}
    reply = d.ok("PUT", f"/recordings/{rid}/composition", state)
    assert reply["status"] == "ok" and reply["updated_at"].endswith("Z")
    saved = d.ok("GET", f"/recordings/{rid}/composition", key=VIEWER_KEY)
    assert saved["timeline"] == state["timeline"] and saved["recording_id"] == rid and saved["room_id"] == "ex"
    status, reply = d.call("POST", f"/recordings/{rid}/export", {"composition_id": "latest", "preset": "draft",
                                                                "format": "mp4", "thumbnail_seconds": 1})
    assert status == 202 and reply["status"] == "queued", reply
    export_id, job_id = reply["export_id"], reply["job_id"]
    got = d.ok("GET", f"/recordings/{rid}", key=VIEWER_KEY)
    assert got["export_status"] in ("queued", "processing", "ready") and got["export"]["job_id"] == job_id
    job = wait_job(d, job_id, timeout=240)
    assert job["status"] == "ready", job
    got = d.ok("GET", f"/recordings/{rid}", key=VIEWER_KEY)
    assert got["export_status"] == "ready" and got["export"]["export_id"] == export_id
    key = got["export"]["key"]
    assert key == f"{rec['path']}/processed/exports/{export_id}.mp4", key
    out = os.path.join(d.data_dir, key)
    ok, errors = clean_decode(out)
    assert ok, errors
    info = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "stream=width,height,avg_frame_rate", "-of", "json", out],
                          capture_output=True, text=True, check=True).stdout
    stream = json.loads(info)["streams"][0]
    assert (stream["width"], stream["height"], stream["avg_frame_rate"]) == (640, 360, "15/1"), stream
    thumbs = os.path.join(d.data_dir, rec["path"], "processed", "thumbnails", export_id)
    assert os.path.exists(os.path.join(thumbs, "thumb_0001.jpg")), os.listdir(os.path.dirname(thumbs))
    assert wait_for(lambda: job_events(rx).get(job_id) == ["Started", "Completed"], timeout=30)


def _processing_in_sqlite(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT id, attempts FROM jobs WHERE state = 'processing'").fetchall()
    finally:
        con.close()


def test_a_job_survives_kill_9_of_serve_and_completes_once(tmp_path):
    rx = Receiver(fail_first=0)
    args = ["--webhook", rx.url, "--webhook-secret", SECRET, "--visibility-ms", str(VISIBILITY_MS)]
    d = Daemon(tmp_path / "data", args).start()
    try:
        rec = record(d, "crash", seconds=6)
        stop(d, rec)
        status, reply = d.call("POST", "/api/convert/job", {"record_path": rec["path"],
                                                            "compose": {"audio": True, "video": True}},
                               key=ADMIN_KEY)
        job_id = reply["data"]["job_id"]
        db = os.path.join(d.data_dir, "jobs.db")
        assert wait_for(lambda: _processing_in_sqlite(db), timeout=60, step=0.02)
        d.kill9()
        assert _processing_in_sqlite(db) == [(job_id, 1)]   # killed while it ran
    finally:
        if d.alive():
            d.kill9()
    d2 = Daemon(tmp_path / "data", args, ports=d.ports).start()
    try:
        job = wait_job(d2, job_id, timeout=240)
        assert job["status"] == "ready" and job["attempts"] == 2, job
        ok, errors = clean_decode(os.path.join(d2.data_dir, job["result"]["compose"]["media_uri"]))
        assert ok, errors
        assert wait_for(lambda: job_events(rx).get(job_id) == ["Started", "Completed"], timeout=30), job_events(rx)
        # neither the killed attempt's scratch folder nor the second's is left behind
        assert not [n for n in os.listdir(os.path.join(d2.data_dir, "work")) if n.startswith(job_id)]
    finally:
        d2.stop()
        rx.close()


def test_auto_convert_when_the_room_closes(tmp_path):
    rx = Receiver(fail_first=0)
    d = Daemon(tmp_path / "data", ["--webhook", rx.url, "--webhook-secret", SECRET,
                                   "--auto-convert", "transmux"]).start()
    try:
        rec = record(d, "auto", seconds=3)
        d.ok("DELETE", "/rooms/auto")   # stops the recording (room_closed) and converts it

        def converted():
            for job_id, names in job_events(rx).items():
                if names == ["Started", "Completed"]:
                    return job_id
        job_id = wait_for(converted, timeout=60)
        assert job_id, job_events(rx)
        job = d.ok("GET", f"/api/convert/job/{job_id}", key=VIEWER_KEY)["data"]
        assert job["recording_id"] == rec["recording_id"] and job["kind"] == "transmux"
        assert job["params"]["record_path"] == rec["path"]
    finally:
        d.stop()
        rx.close()
    status = subprocess.run([CAPSTAN, "serve", "--auto-convert", "everything"], capture_output=True, text=True)
    assert status.returncode == 2 and "--auto-convert takes transmux, compose or convert" in status.stderr
    status = subprocess.run([CAPSTAN, "serve", "--queue", "amqp://x"], capture_output=True, text=True)
    assert status.returncode == 2 and "--queue takes sqlite or redis://" in status.stderr


# ---- Redis + S3: `capstan worker` processes anywhere ----

def test_auto_convert_waits_for_the_last_chunks_to_reach_the_store(tmp_path):
    """With S3 storage, the room closes while its last chunks cannot get into the store: the
    auto-convert job waits until the store holds the whole recording (the recorder puts a
    final metadata.json there only after every chunk), then converts every frame: the same
    frames as a convert of the complete recording afterwards."""
    s3 = S3Server(tmp_path / "s3").start()
    rx = Receiver(fail_first=0)
    d = Daemon(tmp_path / "data", ["--storage", s3.url("auto"), "--auto-convert", "transmux",
                                   "--chunk-seconds", "1", "--webhook", rx.url,
                                   "--webhook-secret", SECRET]).start()
    try:
        rec = record(d, "late", seconds=4)
        s3.refuse = lambda method, path: method == "PUT" and ".ctrk" in path
        d.ok("DELETE", "/rooms/late")   # stops the recording: its last chunks are sealed now

        def converted():
            for job_id, names in job_events(rx).items():
                if names == ["Started", "Completed"]:
                    return job_id
        time.sleep(6)                   # the job has started by now
        assert not converted(), job_events(rx)
        s3.refuse = None
        job_id = wait_for(converted, timeout=120)
        assert job_id, job_events(rx)
        job = d.ok("GET", f"/api/convert/job/{job_id}", key=VIEWER_KEY)["data"]
        tracks = job["result"]["transmux"]["peers"]["ann"]["sessions"]["0"]["track"]
        whole = json.loads(run_capstan("convert", "--in", s3.url(f"auto/{rec['path']}"), "--transmux",
                                       "--out", tmp_path / "whole", "--json").stdout)
        for t in whole["tracks"]:
            key = tracks[t["track_id"]]["timeline"][0]["path"]
            got = fetch(s3, s3.url("auto"), key, str(tmp_path / os.path.basename(key)))
            stream = "v:0" if t["kind"] == "video" else "a:0"
            ours = probe(got, stream)["streams"][0]["nb_read_frames"]
            assert int(ours) == int(probe(str(tmp_path / "whole" / t["file"]), stream)["streams"][0]["nb_read_frames"])
            assert int(ours) > (100 if t["kind"] == "video" else 150), (t, ours)
        assert s3.rejected == []
    finally:
        d.stop()
        rx.close()
        s3.cleanup()


@pytest.fixture
def cluster(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    s3 = S3Server(tmp_path / "s3").start()
    rx = Receiver(fail_first=0)
    d = Daemon(tmp_path / "data", ["--queue", redis.url, "--workers", "0", "--webhook", rx.url,
                                   "--webhook-secret", SECRET, "--api-key", f"{WORKER_KEY}:worker",
                                   "--visibility-ms", str(VISIBILITY_MS)]).start()
    workers = []

    def worker(name):
        proc = subprocess.Popen([CAPSTAN, "worker", "--queue", redis.url, "--storage", s3.url("cluster"),
                                 "--work-dir", str(tmp_path / f"work-{name}"), "--name", name,
                                 "--visibility-ms", str(VISIBILITY_MS)],
                                stdout=subprocess.PIPE, stderr=open(tmp_path / f"{name}.log", "a"), text=True)
        line = proc.stdout.readline()
        assert f"capstan worker {name}" in line, (line, open(tmp_path / f"{name}.log").read())
        workers.append(proc)
        return proc

    yield d, rx, redis, s3, worker
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    d.stop()
    rx.close()
    redis.stop()
    s3.cleanup()


def upload(s3, local_dir, prefix):
    """A recording folder into the cluster's store, with capstan's own S3 client."""
    for root, _, files in os.walk(local_dir):
        for name in files:
            path = os.path.join(root, name)
            key = f"{prefix}/{os.path.relpath(path, local_dir)}"
            run_capstan("storage", "put", s3.url("cluster"), key, path)


def fetch(s3, url, key, dest):
    run_capstan("storage", "get", url, key, dest)
    return dest


def catch_mid_job(redis, name, job_ids, proc, timeout=120):
    """Freezes the worker process while it holds a job: polls the jobs' hashes until one is
    processing under this worker, stops the process, and checks that it still is (else lets
    it go on and tries the next). Returns the job id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for job_id in job_ids:
            h = redis.hgetall(f"capstan:job:{job_id}")
            if h.get("state") == "processing" and h.get("owner", "").startswith(name):
                proc.send_signal(signal.SIGSTOP)
                h = redis.hgetall(f"capstan:job:{job_id}")
                if h.get("state") == "processing" and h.get("owner", "").startswith(name):
                    return job_id
                proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"{name} never seen mid-job")


def test_two_workers_on_redis_ten_jobs_each_ready_exactly_once(cluster, tmp_path):
    d, rx, redis, s3, worker = cluster
    rec = record(d, "cl", seconds=4)
    stop(d, rec)
    local = d.recording_dir("cl", rec["recording_id"])
    paths = [f"rooms/cl/rec-{i}" for i in range(10)]
    for p in paths:
        upload(s3, local, p)
    presigned = run_capstan("storage", "presign", s3.url("cluster"), "custom/presigned.mp4", "PUT",
                            "3600").stdout.strip()
    assert presigned.startswith("http") and "X-Amz-Signature=" in presigned
    custom = f"http://S3RVER:S3RVER@127.0.0.1:{s3.port}/{s3.bucket}/custom/t0?path_style=true"
    bodies = []
    for i, p in enumerate(paths):
        if i % 3 == 0:
            body = {"record_path": p, "transmux": {"custom_s3": custom} if i == 0 else {}}
        elif i % 3 == 1:
            body = {"record_path": p, "compose": {"audio": True, "video": True}}
            if i == 1:
                body["compose"]["custom_s3"] = presigned
        else:
            body = {"record_path": p, "transmux": {}, "compose": {"audio": True, "video": False}}
        bodies.append(body)

    a = worker("wA")
    worker("wB")
    job_ids = []

    def submit(batch):
        for body in batch:
            status, reply = d.call("POST", "/api/convert/job", body, key=WORKER_KEY)
            assert status == 200, reply
            job_ids.append(reply["data"]["job_id"])

    def ready_lines(name):
        return open(tmp_path / f"{name}.log").read().count("job ready")

    # both workers take jobs; once A has finished one, it is killed -9 in the middle of
    # another, and B reclaims that one once its lease runs out
    submit(bodies[:4])
    assert wait_for(lambda: ready_lines("wA") >= 1, timeout=120)
    submit(bodies[4:])
    killed = catch_mid_job(redis, "wA", job_ids[4:], a)
    a.kill()
    a.wait()
    assert redis.hgetall(f"capstan:job:{killed}")["state"] == "processing"

    jobs = {j: wait_job(d, j, timeout=300) for j in job_ids}
    for j, job in jobs.items():
        assert job["status"] == "ready", job
        assert job["attempts"] == (2 if j == killed else 1), job
    assert jobs[killed]["worker"] is None
    assert ready_lines("wA") >= 1 and ready_lines("wB") >= 1
    # every job's hooks, each exactly once (Started when queued, Completed when ready)
    assert wait_for(lambda: all(job_events(rx).get(j) == ["Started", "Completed"] for j in job_ids), timeout=60), \
        job_events(rx)
    ids = [h["X-Capstan-Event-Id"] for h, _ in rx.acked()]
    assert len(ids) == len(set(ids))
    # nothing left pending in Redis: every entry acknowledged, every event taken by serve
    assert redis.command("XLEN", "capstan:jobs") == 0
    assert redis.command("XPENDING", "capstan:jobs", "workers")[0] == 0
    assert wait_for(lambda: redis.command("XLEN", "capstan:events") == 0, timeout=10)

    # outputs: where each request said, and they decode
    for i, j in enumerate(job_ids):
        result = jobs[j]["result"]
        if "transmux" in bodies[i]:
            tracks = result["transmux"]["peers"]["ann"]["sessions"]["0"]["track"]
            assert set(tracks) == {"ann-video", "ann-audio"}, tracks
            for track in tracks.values():
                key = track["timeline"][0]["path"]
                if i == 0:
                    assert key.startswith("s3://capstan-test/custom/t0/"), key
                    got = fetch(s3, s3.url("custom/t0"), key.rsplit("/", 1)[1], str(tmp_path / os.path.basename(key)))
                else:
                    assert key.startswith(f"{paths[i]}/processed/tracks/"), key
                    got = fetch(s3, s3.url("cluster"), key, str(tmp_path / f"{i}-{os.path.basename(key)}"))
                ok, errors = clean_decode(got)
                assert ok, errors
        if "compose" in bodies[i]:
            uri = result["compose"]["media_uri"]
            if i == 1:
                assert uri == presigned.split("?")[0], uri
                got = fetch(s3, s3.url("cluster"), "custom/presigned.mp4", str(tmp_path / "presigned.mp4"))
            else:
                ext = "mp4" if bodies[i]["compose"]["video"] else "m4a"
                assert uri == f"{paths[i]}/processed/composite.{ext}", uri
                got = fetch(s3, s3.url("cluster"), uri, str(tmp_path / f"{i}-composite.{ext}"))
            ok, errors = clean_decode(got)
            assert ok, errors
    assert not s3.rejected, s3.rejected[:3]


def test_a_frozen_worker_past_its_lease_is_discarded_when_it_wakes(cluster, tmp_path):
    d, rx, redis, s3, worker = cluster
    rec = record(d, "fz", seconds=6)
    stop(d, rec)
    upload(s3, d.recording_dir("fz", rec["recording_id"]), "rooms/fz/r")
    a = worker("wA")
    status, reply = d.call("POST", "/api/convert/job", {"record_path": "rooms/fz/r",
                                                        "compose": {"audio": True, "video": True}}, key=WORKER_KEY)
    job_id = reply["data"]["job_id"]
    frozen = catch_mid_job(redis, "wA", [job_id], a)
    assert frozen == job_id
    b = worker("wB")   # takes the job once A's lease has run out, and finishes it
    job = wait_job(d, job_id, timeout=300)
    assert job["status"] == "ready" and job["attempts"] == 2, job
    a.send_signal(signal.SIGCONT)   # A wakes up mid-job with a stale lease
    log = tmp_path / "wA.log"
    assert wait_for(lambda: "discarded" in open(log).read(), timeout=120), open(log).read()[-2000:]
    time.sleep(1)
    assert job_events(rx).get(job_id) == ["Started", "Completed"]
    # not even a duplicate delivery: the late finisher wrote nothing
    raw = [b for _, b in rx.acked() if f'"job_id":"{job_id}"' in b.decode() and b'"Completed"' in b]
    assert len(raw) == 1
    assert d.ok("GET", f"/api/convert/job/{job_id}", key=VIEWER_KEY)["data"]["result"] == job["result"]
    for proc in (a, b):
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_worker_refuses_bad_command_lines(tmp_path):
    cases = [
        ([], "--queue redis://HOST:PORT is required"),
        (["--queue", "sqlite:x.db", "--storage", "x"], "--queue takes redis://"),
        (["--queue", "redis://127.0.0.1:1"], "--storage URL is required"),
        (["--queue", "redis://127.0.0.1:1", "--storage", str(tmp_path), "--concurrency", "0"], "--concurrency"),
        (["--queue", "redis://127.0.0.1:1", "--storage", str(tmp_path), "--bogus"], "unknown or incomplete option"),
    ]
    for args, words in cases:
        proc = subprocess.run([CAPSTAN, "worker", *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
    # a Redis that is not there is a clear failure, not a hang
    port = __import__("redis").free_tcp_port()
    proc = subprocess.run([CAPSTAN, "worker", "--queue", f"redis://127.0.0.1:{port}", "--storage", str(tmp_path),
                           "--work-dir", str(tmp_path / "w")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "cannot connect to Redis" in proc.stderr, proc.stderr
    # two workers on one work folder: the second says so
    redis = RedisServer(tmp_path / "redis").start()
    try:
        first = subprocess.Popen([CAPSTAN, "worker", "--queue", redis.url, "--storage", str(tmp_path),
                                  "--work-dir", str(tmp_path / "w")], stdout=subprocess.PIPE, text=True)
        assert "capstan worker" in first.stdout.readline()
        proc = subprocess.run([CAPSTAN, "worker", "--queue", redis.url, "--storage", str(tmp_path),
                               "--work-dir", str(tmp_path / "w")], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and "in use by another worker" in proc.stderr, proc.stderr
        first.terminate()
        assert first.wait(timeout=30) == 0
    finally:
        redis.stop()
