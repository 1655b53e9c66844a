"""Transmux and compose with S3 storage: the same real-encoder material as test_transmux.py
(captured on loopback, imported), put into S3, converted with `capstan convert --in s3://...`
and `--out s3://...`, and judged by ffmpeg from the objects S3 holds: a clean decode, every
frame sent, the duration within one frame."""
import json
import os
import subprocess

import pytest

from conftest import Capture, free_udp_ports, run_capstan, run_sender
from s3server import S3Server
from test_s3 import copy_out, stored_objects
from test_transmux import AUDIO, FRAMES, VIDEO, clean_decode, probe


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.cleanup()


def record(tmp_path, pipeline, mapping):
    """A real sender captured and imported: a recording folder."""
    ports = free_udp_ports(1)
    cap = Capture(str(tmp_path / "x.pcap"), f"udp and port {ports[0]}")
    run_sender(["gst-launch-1.0", "-q", *pipeline, "!", "udpsink", "host=127.0.0.1", f"port={ports[0]}"], 10)
    cap.stop()
    args = ["import-pcap", cap.path, "--out", tmp_path / "rec"]
    if mapping:
        args += ["--map", mapping]
    run_capstan(*args)
    return tmp_path / "rec"


def put_recording(s3, rec_dir, url):
    """Every file of the recording folder into S3 with `capstan storage put`."""
    count = 0
    for dirpath, _, names in os.walk(rec_dir):
        for name in names:
            path = os.path.join(dirpath, name)
            run_capstan("storage", "put", url, os.path.relpath(path, rec_dir), path)
            count += 1
    return count


def packet_hashes(path):
    """Every packet's timestamps and MD5, as ffmpeg reads them (containers carry random IDs)."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-map", "0", "-c", "copy", "-f", "framemd5", "-"],
                          capture_output=True, text=True, check=True).stdout


VIDEO_CASES = ["vp8", "h264"]
AUDIO_CASES = ["opus", "pcmu"]


@pytest.mark.parametrize("codec", VIDEO_CASES + AUDIO_CASES)
def test_transmux_from_s3_to_s3_decodes_clean_with_every_frame(s3, tmp_path, codec):
    if codec in VIDEO:
        elements, mapping, ext = VIDEO[codec]
        pipeline = ["videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
                    "video/x-raw,width=320,height=240,framerate=30/1", "!", *elements]
        mapping = f"96={mapping}"
    else:
        elements, mapping, ext = AUDIO[codec]
        pipeline = ["audiotestsrc", "is-live=true", "num-buffers=100", "!", *elements]
    rec = record(tmp_path, pipeline, mapping)
    rec_key = f"cap/rooms/r-{codec}/rec1"
    assert put_recording(s3, rec, s3.url(rec_key)) >= 2
    out_key = f"out/{codec}"
    report = json.loads(run_capstan("convert", "--in", s3.url(rec_key), "--transmux", "--out", s3.url(out_key),
                                    "--json").stdout)
    (track,) = report["tracks"]
    outputs = stored_objects(s3, out_key)
    assert track["file"] in outputs and "summary.json" in outputs, sorted(outputs)
    local = copy_out(outputs, str(tmp_path / "out"))
    path = os.path.join(local, track["file"])
    assert path.endswith("." + ext)
    ok, errors = clean_decode(path)
    assert ok, errors
    if codec in VIDEO:
        info = probe(path)
        assert int(info["streams"][0]["nb_read_frames"]) == FRAMES
        assert abs(float(info["format"]["duration"]) - FRAMES / 30) <= 1 / 30 + 0.001
    else:
        info = probe(path, "a:0")
        assert float(info["format"]["duration"]) > 1.5
    # the same conversion from the local folder gives the same media, packet for packet
    run_capstan("convert", "--in", rec, "--transmux", "--out", tmp_path / "local-out")
    assert packet_hashes(path) == packet_hashes(str(tmp_path / "local-out" / track["file"]))
    assert s3.rejected == []


def test_compose_from_s3_publishes_the_composite(s3, tmp_path):
    elements, mapping, _ = VIDEO["vp8"]
    pipeline = ["videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
                "video/x-raw,width=320,height=240,framerate=30/1", "!", *elements]
    rec = record(tmp_path, pipeline, f"96={mapping}")
    rec_key = "cap/rooms/r-compose/rec1"
    put_recording(s3, rec, s3.url(rec_key))
    # --out an S3 prefix: the composite lands there
    run_capstan("convert", "--in", s3.url(rec_key), "--compose-video", "--resolution", "320x240",
                "--out", s3.url("out/composed"))
    outputs = stored_objects(s3, "out/composed")
    assert list(outputs) == ["composite.mp4"], sorted(outputs)
    local = copy_out(outputs, str(tmp_path / "composed"))
    ok, errors = clean_decode(os.path.join(local, "composite.mp4"))
    assert ok, errors
    info = probe(os.path.join(local, "composite.mp4"))
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (320, 240)
    assert abs(float(info["format"]["duration"]) - FRAMES / 30) <= 2 / 30 + 0.001
    # no --out: the composite goes back under the recording's processed/ in S3
    run_capstan("convert", "--in", s3.url(rec_key), "--compose-video", "--resolution", "320x240")
    assert "processed/composite.mp4" in stored_objects(s3, rec_key)
    assert s3.rejected == []


def test_bad_s3_input_is_refused_with_a_message(s3, tmp_path):
    proc = run_capstan("convert", "--in", s3.url("cap/rooms/none/rec"), "--transmux", "--out", tmp_path / "o",
                       check=False)
    assert proc.returncode == 1 and "nothing under" in proc.stderr, proc.stderr
    proc = run_capstan("convert", "--in", "s3://bucket?colour=blue", "--transmux", "--out", tmp_path / "o",
                       check=False)
    assert proc.returncode == 2 and "--in: unknown S3 URL parameter" in proc.stderr, proc.stderr
    rec = tmp_path / "empty-rec"
    rec.mkdir()
    proc = run_capstan("convert", "--in", rec, "--transmux", "--out", "s3://B?x=1", check=False)
    assert proc.returncode == 2 and "--out:" in proc.stderr, proc.stderr
