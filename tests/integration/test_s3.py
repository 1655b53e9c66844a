"""S3 storage against a real S3-compatible server (s3rver behind a SigV4-checking proxy,
s3server.py): the store operations through `capstan storage`, presigned URLs fetched with
plain urllib, and the recorder's spool uploader: an outage of the S3 server in the middle
of a recording (backlog rises, alarm, drain; every chunk ends up in S3 byte for byte), local
chunks deleted only once uploaded, and a kill -9 + restart that keeps counts and numbering."""
import hashlib
import json
import os
import re
import threading
import time
import urllib.request

import pytest

from conftest import Capture, run_capstan, run_sender
from daemon import Daemon, wait_for
from rtpcount import count
from s3server import S3Server, SignatureError, copy_objects, signature, verify
from senders import gst_peer

VIDEO_SSRC, AUDIO_SSRC = 0x5A5A0001, 0x5A5A0002


@pytest.fixture
def s3(tmp_path):
    server = S3Server(tmp_path / "s3").start()
    yield server
    server.cleanup()


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def stored_objects(s3, prefix):
    """{key below prefix: path of the object's bytes}, read from s3rver's own folder."""
    return s3.objects(prefix)


copy_out = copy_objects


def local_chunks(rec_dir):
    found = {}
    for dirpath, _, names in os.walk(os.path.join(rec_dir, "tracks")):
        for name in names:
            if name.endswith(".ctrk"):
                full = os.path.join(dirpath, name)
                found[os.path.relpath(full, rec_dir)] = full
    return found


def inspect(rec_dir):
    report = json.loads(run_capstan("inspect", rec_dir, "--json").stdout)
    for t in report["tracks"]:
        assert t["damaged_records"] == 0 and not t["torn_tail"], t
    return {t["ssrc"]: t for t in report["tracks"]}


def setup_room(d, room="s3room"):
    d.ok("PUT", f"/rooms/{room}", {"room_name": "S3"})
    d.ok("POST", f"/rooms/{room}/peers", {"peer_id": "p"})
    d.ok("POST", f"/rooms/{room}/producers", {"producer_id": "v", "peer_id": "p", "kind": "video",
                                              "codec": "vp8", "payload_type": 96, "ssrc": VIDEO_SSRC})
    d.ok("POST", f"/rooms/{room}/producers", {"producer_id": "a", "peer_id": "p", "kind": "audio",
                                              "codec": "opus", "payload_type": 111, "ssrc": AUDIO_SSRC})
    return d.ok("POST", f"/rooms/{room}/recordings", {"requester_id": "p"})


def chunk_numbers(keys, track):
    return sorted(int(re.search(r"(\d+)\.ctrk$", k).group(1)) for k in keys if k.startswith(f"tracks/{track}/"))


# ---- the judge itself ----

def test_signature_checker_agrees_with_the_aws_examples():
    """The proxy's SigV4 checker against AWS's published vectors, so a 200 through it means a
    signature AWS would accept (and a tampered one is refused)."""
    secrets = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    at = 1369353600  # 2013-05-24T00:00:00Z
    empty = hashlib.sha256(b"").hexdigest()
    headers = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
               ("x-amz-content-sha256", empty), ("x-amz-date", "20130524T000000Z"),
               ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                                 "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")]
    assert verify("GET", "/test.txt", headers, b"", secrets, now=at) == "header"
    with pytest.raises(SignatureError):
        verify("GET", "/test.txt", headers[:1] + [("Range", "bytes=0-10")] + headers[2:], b"", secrets, now=at)
    presigned = ("/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                 "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                 "X-Amz-SignedHeaders=host&X-Amz-Signature="
                 "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    host = [("Host", "examplebucket.s3.amazonaws.com")]
    assert verify("GET", presigned, host, b"", secrets, now=at + 60) == "query"
    with pytest.raises(SignatureError, match="expired"):
        verify("GET", presigned, host, b"", secrets, now=at + 86401)
    with pytest.raises(SignatureError):
        verify("GET", presigned.replace("test.txt", "test2.txt"), host, b"", secrets, now=at + 60)
    assert signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524T000000Z", "us-east-1", "s3",
                     "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
                     f"x-amz-content-sha256:{empty}\nx-amz-date:20130524T000000Z\n\n"
                     f"host;x-amz-content-sha256;x-amz-date\n{empty}") == \
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


# ---- the store ----

def test_store_operations_against_a_real_s3_server(s3, tmp_path):
    url = s3.url("ops prefix", part_mb=5, max_keys=2)
    out = run_capstan("storage", "check", url).stdout
    assert "put, head, ranged get and delete work" in out
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 7))            # three parts of 5 MiB
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello capstan\n")
    run_capstan("storage", "put", url, "rooms/r/rec/tracks/a b+c/00000001.ctrk", big)
    for i in range(5):
        run_capstan("storage", "put", url, f"rooms/r/rec/n{i}.json", small)
    # the multipart upload went as parts, and the object is the file
    parts = [q for m, p, q in s3.requests if m == "PUT" and "partNumber=" in q]
    assert len(parts) == 3
    objects = stored_objects(s3, "ops prefix")
    assert sha256(objects["rooms/r/rec/tracks/a b+c/00000001.ctrk"]) == sha256(big)
    # listing pages through continuation tokens (two keys a page)
    listing = run_capstan("storage", "ls", url, "rooms/r/").stdout.splitlines()
    keys = [line.split(None, 2)[2] for line in listing]
    assert len(keys) == 6 and keys == sorted(keys), listing
    assert sum(1 for m, p, q in s3.requests if m == "GET" and "continuation-token=" in q) >= 2
    # ranged and whole reads
    run_capstan("storage", "get", url, "rooms/r/rec/tracks/a b+c/00000001.ctrk", tmp_path / "part", 5000000, 300)
    assert (tmp_path / "part").read_bytes() == big.read_bytes()[5000000:5000300]
    run_capstan("storage", "get", url, "rooms/r/rec/tracks/a b+c/00000001.ctrk", tmp_path / "whole")
    assert sha256(tmp_path / "whole") == sha256(big)
    head = run_capstan("storage", "head", url, "rooms/r/rec/n0.json").stdout
    assert f"size {len(small.read_bytes())}" in head and hashlib.md5(small.read_bytes()).hexdigest() in head
    # presigned GET and PUT, used with nothing but urllib
    get_url = run_capstan("storage", "presign", url, "rooms/r/rec/n1.json", "GET", 600).stdout.strip()
    status, body = s3.get(get_url)
    assert status == 200 and body == small.read_bytes()
    put_url = run_capstan("storage", "presign", url, "uploaded/by-url.bin", "PUT", 600).stdout.strip()
    req = urllib.request.Request(put_url, data=b"sent with a presigned URL", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
    assert open(stored_objects(s3, "ops prefix")["uploaded/by-url.bin"], "rb").read() == b"sent with a presigned URL"
    tampered = get_url.replace("n1.json", "n2.json")
    assert s3.get(tampered)[0] == 403
    assert s3.counts.get("query", 0) == 2
    # delete, then the object is gone; a second delete is fine
    run_capstan("storage", "rm", url, "rooms/r/rec/n0.json")
    run_capstan("storage", "rm", url, "rooms/r/rec/n0.json")
    gone = run_capstan("storage", "head", url, "rooms/r/rec/n0.json", check=False)
    assert gone.returncode == 1 and "HTTP 404" in gone.stderr
    # every request capstan signed was verified (the tampered URL is the one refusal)
    assert len(s3.rejected) == 1 and "n2.json" in s3.rejected[0], s3.rejected


def test_store_errors_are_clear(s3, tmp_path):
    wrong = s3.url("p", create_bucket=0).replace("secret_key=S3RVER", "secret_key=WRONG")
    proc = run_capstan("storage", "check", wrong, check=False)
    assert proc.returncode == 1 and "HTTP 403 SignatureDoesNotMatch" in proc.stderr, proc.stderr
    before = len(s3.rejected)
    proc = run_capstan("storage", "head", wrong, "k", check=False)
    assert proc.returncode == 1 and "HTTP 403 (forbidden" in proc.stderr, proc.stderr
    assert len(s3.rejected) == before + 1   # a 4xx is not retried
    proc = run_capstan("storage", "ls", "s3://Bad_Bucket?access_key=a&secret_key=b", check=False)
    assert proc.returncode == 1 and "bad bucket name" in proc.stderr
    proc = run_capstan("storage", "ls", s3.url() + "&colour=blue", check=False)
    assert proc.returncode == 1 and "unknown S3 URL parameter 'colour'" in proc.stderr
    closed = f"s3://b-ucket?endpoint=http://127.0.0.1:1&access_key=a&secret_key=b&retries=1"
    proc = run_capstan("storage", "head", closed, "k", check=False)
    assert proc.returncode == 1 and "HEAD k" in proc.stderr and "127.0.0.1" in proc.stderr
    proc = run_capstan("storage", "frobnicate", s3.url(), check=False)
    assert proc.returncode == 2 and "unknown action" in proc.stderr
    proc = run_capstan("serve", "--data", tmp_path / "d", "--storage", "s3://x", check=False)
    assert proc.returncode == 2 and "--storage: bad bucket name" in proc.stderr


# ---- the recorder's uploader ----

def test_s3_outage_mid_recording_every_chunk_reaches_s3_byte_identical(s3, tmp_path):
    """S3 down for 60 s in the middle of a recording: the spool keeps everything, the backlog
    and the quota alarm show in /metrics and the log, recording goes on, and after S3 returns
    every chunk in S3 equals the spool's copy byte for byte (--spool-keep keeps the copies to
    compare) and holds every packet the capture saw."""
    prefix = "outage"
    d = Daemon(tmp_path / "data", ["--storage", s3.url(prefix), "--chunk-seconds", "2", "--spool-keep",
                                   "--spool-quota-mb", "1", "--fsync-ms", "200"]).start()
    try:
        rec = setup_room(d)
        rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
        rec_dir = d.recording_dir("s3room", rid)
        cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
        # noise at 1.5 Mbit/s: enough backlog during the outage to cross the 1 MiB quota
        cmd = gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 20, pattern="snow")
        cmd.insert(cmd.index("vp8enc") + 1, "target-bitrate=1500000")
        sender = threading.Thread(target=run_sender, args=(cmd, 20))
        sender.start()
        # S3 is up: the first sealed chunks go up
        assert wait_for(lambda: d.metrics().get("capstan_uploads_total", 0) >= 4, timeout=30), d.metrics()
        s3.stop()
        down_at = time.time()
        sender.join()
        cap.stop()
        final = d.ok("POST", f"/recordings/{rid}/stop")           # stopped while S3 is down
        m = d.metrics()
        assert m["capstan_upload_backlog_files"] > 0 and m["capstan_upload_backlog_bytes"] > 1 << 20, m
        assert wait_for(lambda: d.metrics()["capstan_upload_failures_total"] > 0, timeout=30)
        assert wait_for(lambda: d.metrics()["capstan_spool_over_quota"] == 1, timeout=30), d.metrics()
        assert d.metrics()["capstan_upload_store_up"] == 0
        backlog_peak = d.metrics()["capstan_upload_backlog_files"]
        time.sleep(max(0.0, 60 - (time.time() - down_at)))
        s3.start()
        assert wait_for(lambda: d.metrics()["capstan_upload_backlog_files"] == 0, timeout=120), d.metrics()
        m = d.metrics()
        assert m["capstan_upload_backlog_bytes"] == 0 and m["capstan_spool_over_quota"] == 0
        assert m["capstan_upload_store_up"] == 1 and m["capstan_uploads_total"] >= backlog_peak + 4
        d.stop()
    finally:
        if d.alive():
            d.stop()
    log = open(d.log_path).read()
    assert "cannot reach the store" in log and "ALARM spool over quota" in log and "reachable again" in log

    objects = stored_objects(s3, f"{prefix}/rooms/s3room/{rid}")
    chunks = local_chunks(rec_dir)
    assert len(chunks) >= 16, sorted(chunks)                      # ~10 per track at 2 s
    assert set(k for k in objects if k.endswith(".ctrk")) == set(chunks)
    for key, path in chunks.items():
        assert sha256(objects[key]) == sha256(path), key
    for name in ("metadata.json", "timeline.json", "policy.json"):
        assert sha256(objects[name]) == sha256(os.path.join(rec_dir, name)), name
    assert json.load(open(objects["metadata.json"]))["recording"]["state"] == "stopped"
    for track in ("p-video", "p-audio"):
        numbers = chunk_numbers(objects, track)
        assert numbers == list(range(1, len(numbers) + 1)), (track, numbers)
    # what S3 holds is every packet the capture saw
    tracks = inspect(copy_out(objects, str(tmp_path / "from-s3")))
    sent, rtcp, _ = count(cap.path, port)
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        assert tracks[ssrc]["packets"] == sent[ssrc], (ssrc, tracks[ssrc]["packets"], sent[ssrc])
    assert final["packets"] == sent[VIDEO_SSRC] + sent[AUDIO_SSRC]
    assert s3.rejected == []


def test_uploaded_chunks_leave_the_spool_and_the_newest_stays_while_live(s3, tmp_path):
    prefix = "spool"
    d = Daemon(tmp_path / "data", ["--storage", s3.url(prefix), "--chunk-seconds", "1"]).start()
    try:
        rec = setup_room(d)
        rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
        rec_dir = d.recording_dir("s3room", rid)
        cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
        run_sender(gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 8), 8)
        cap.stop()
        # still recording: older chunks went, the newest sealed one of each track stays
        assert wait_for(lambda: d.metrics()["capstan_upload_backlog_files"] == 0 and
                        d.metrics()["capstan_spool_chunks_deleted_total"] >= 6, timeout=30), d.metrics()
        for track in ("p-video", "p-audio"):
            left = chunk_numbers(local_chunks(rec_dir), track)
            stored = chunk_numbers(stored_objects(s3, f"{prefix}/rooms/s3room/{rid}"), track)
            assert 1 <= len(left) <= 2 and len(stored) >= 4, (track, left, stored)
            assert max(stored) in left, (track, left, stored)
        d.ok("POST", f"/recordings/{rid}/stop")
        # over: every chunk leaves the spool once S3 has it; the JSON files stay
        assert wait_for(lambda: not local_chunks(rec_dir), timeout=30), local_chunks(rec_dir)
        assert os.path.exists(os.path.join(rec_dir, "metadata.json"))
        d.stop()
    finally:
        if d.alive():
            d.stop()
    objects = stored_objects(s3, f"{prefix}/rooms/s3room/{rid}")
    assert json.load(open(objects["metadata.json"]))["recording"]["state"] == "stopped"
    tracks = inspect(copy_out(objects, str(tmp_path / "from-s3")))
    sent, _, _ = count(cap.path, port)
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        assert tracks[ssrc]["packets"] == sent[ssrc]
    assert s3.rejected == []


def test_restarts_keep_counts_and_chunk_numbers_with_uploaded_chunks(s3, tmp_path):
    """Chunks already uploaded are gone from the spool when the recorder dies (kill -9) or
    stops (SIGTERM, which seals every chunk and keeps the recording live): each restart
    counts them from their indexes in S3, and the continued recording numbers its chunks
    after the ones in S3, never over them."""
    prefix = "crash"
    args = ["--storage", s3.url(prefix), "--chunk-seconds", "1", "--recover-seconds", "30", "--fsync-ms", "200"]
    daemons = [Daemon(tmp_path / "data", args).start()]
    try:
        d = daemons[0]
        rec = setup_room(d)
        rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
        rec_dir = d.recording_dir("s3room", rid)
        cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
        minimum = {}
        for phase in ("kill -9", "SIGTERM", "last"):
            run_sender(gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 4), 4)
            assert wait_for(lambda: d.metrics()["capstan_upload_backlog_files"] == 0 and
                            d.metrics()["capstan_spool_chunks_deleted_total"] >= 2, timeout=30), d.metrics()
            if phase == "last":
                break
            time.sleep(1)   # past an fsync interval: what arrived is on disk
            recorded = d.ok("GET", f"/recordings/{rid}")["packets"]
            if phase == "kill -9":
                d.kill9()
            else:
                d.stop()
            d = Daemon(tmp_path / "data", args, ports=daemons[0].ports).start()
            daemons.append(d)
            # the counts rebuilt from the spool and from S3 together
            assert d.ok("GET", f"/recordings/{rid}")["packets"] == recorded, phase
            minimum[phase] = recorded
        assert d.ok("GET", f"/recordings/{rid}")["state"] == "recording"
        final = d.ok("POST", f"/recordings/{rid}/stop")
        cap.stop()
        assert wait_for(lambda: not local_chunks(rec_dir) and d.metrics()["capstan_upload_backlog_files"] == 0,
                        timeout=30)
        d.stop()
    finally:
        for x in daemons:
            if x.alive():
                x.proc.kill()
                x.proc.wait()
    objects = stored_objects(s3, f"{prefix}/rooms/s3room/{rid}")
    for track in ("p-video", "p-audio"):
        numbers = chunk_numbers(objects, track)
        assert numbers == list(range(1, len(numbers) + 1)), (track, numbers)
    tracks = inspect(copy_out(objects, str(tmp_path / "from-s3")))
    sent, _, _ = count(cap.path, port)
    in_s3 = sum(t["packets"] for t in tracks.values())
    # S3 holds what the recorder counted: no chunk was written over by a later one
    assert final["packets"] == in_s3 and in_s3 > minimum["SIGTERM"] > minimum["kill -9"] > 0
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        # all but the first packets after each restart, which only tell the interrupted
        # recording that its RTP is back
        assert tracks[ssrc]["packets"] <= sent[ssrc]
    assert s3.rejected == []


def test_a_local_storage_folder_is_a_store_too(tmp_path):
    """--storage DIR (another disk, a shared mount): the same uploader, sizes instead of ETags."""
    store = tmp_path / "store"
    d = Daemon(tmp_path / "data", ["--storage", str(store), "--chunk-seconds", "1"]).start()
    try:
        rec = setup_room(d)
        rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
        rec_dir = d.recording_dir("s3room", rid)
        cap = Capture(str(tmp_path / "sent.pcap"), f"udp and dst port {port}")
        run_sender(gst_peer(port, "vp8", True, VIDEO_SSRC, AUDIO_SSRC, 3), 3)
        cap.stop()
        d.ok("POST", f"/recordings/{rid}/stop")
        assert wait_for(lambda: not local_chunks(rec_dir) and d.metrics()["capstan_upload_backlog_files"] == 0,
                        timeout=30), d.metrics()
        d.stop()
    finally:
        if d.alive():
            d.stop()
    stored = os.path.join(store, "rooms", "s3room", rid)
    assert json.load(open(os.path.join(stored, "metadata.json")))["recording"]["state"] == "stopped"
    tracks = inspect(stored)
    sent, _, _ = count(cap.path, port)
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        assert tracks[ssrc]["packets"] == sent[ssrc]
    # the data folder as its own store: nothing to upload, nothing leaves
    d = Daemon(tmp_path / "data", ["--storage", str(tmp_path / "data")]).start()
    try:
        assert "capstan_upload_backlog_files" not in d.metrics()
    finally:
        d.stop()
