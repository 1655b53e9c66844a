"""import-mjr against real media and Janus's own tools. GStreamer sends VP8, Opus and H.264
over loopback; the capture becomes .mjr files written by tests/integration/mjr.py, which
janus-pp-rec (Janus's post-processor) must accept and convert, so the writer is right, and
Janus's pcap2mjr writes .mjr files of its own from the same capture. capstan import-mjr +
convert --transmux must then decode clean with ffmpeg, with as many frames as janus-pp-rec's
output of the same .mjr and as distinct RTP timestamps were sent."""
import json
import os
import re
import shutil
import subprocess

import pytest

import mjr
from conftest import Capture, free_udp_ports, run_capstan, run_sender
from senders import PT, VIDEO

FRAMES = 90                       # 3 s of 30 fps video
AUDIO_PACKETS = FRAMES * 50 // 30  # 3 s of 20 ms Opus
SSRC = {"vp8": 0x0A0B0C01, "opus": 0x0A0B0C02, "h264": 0x0A0B0C03}
# file stem, media, Janus codec name, janus-pp-rec target
STREAMS = {"vp8": ("alice-video", "v", "vp8", "webm"),
           "opus": ("alice-audio", "a", "opus", "opus"),
           "h264": ("bob-video", "v", "h264", "mp4")}


def sender(ports):
    """One GStreamer process: VP8 and H.264 of the same test pattern, and Opus, each to its port."""
    return [
        "gst-launch-1.0", "-q",
        "videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
        "video/x-raw,width=320,height=240,framerate=30/1", "!", "tee", "name=t",
        "t.", "!", "queue", "!", *VIDEO["vp8"], f"ssrc={SSRC['vp8']}", "!",
        "udpsink", "host=127.0.0.1", f"port={ports[0]}",
        "t.", "!", "queue", "!", *VIDEO["h264"], f"ssrc={SSRC['h264']}", "!",
        "udpsink", "host=127.0.0.1", f"port={ports[2]}",
        "audiotestsrc", "is-live=true", f"num-buffers={AUDIO_PACKETS}", "samplesperbuffer=960", "!",
        "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!",
        "rtpopuspay", f"pt={PT['opus']}", f"ssrc={SSRC['opus']}", "!",
        "udpsink", "host=127.0.0.1", f"port={ports[1]}",
    ]


def janus_pp_rec(mjr_path, out_path):
    proc = subprocess.run(["janus-pp-rec", "-o", str(mjr_path), str(out_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and os.path.getsize(out_path) > 0, proc.stdout + proc.stderr
    return out_path


def clean_decode(path):
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip() == "", f"{path}: {proc.stderr}"


def frames_in(path, audio=False):
    """Video: frames decoded. Audio: packets read (one per Opus frame)."""
    what = "packets" if audio else "frames"
    out = subprocess.run(["ffprobe", "-v", "error", f"-count_{what}", "-select_streams",
                          "a:0" if audio else "v:0", "-show_entries", f"stream=nb_read_{what}",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """One capture of the three streams, our .mjr files of it, Janus's .mjr files of it, and
    janus-pp-rec's conversion of ours."""
    assert shutil.which("janus-pp-rec") and shutil.which("pcap2mjr"), \
        "janus-pp-rec and pcap2mjr come with Debian's janus-tools (scripts/setup installs it)"
    tmp = tmp_path_factory.mktemp("mjr")
    ports = free_udp_ports(3)
    cap = Capture(str(tmp / "av.pcap"), f"udp and portrange {ports[0]}-{ports[2]}")
    run_sender(sender(ports), FRAMES // 30)
    cap.stop()
    datagrams = mjr.read_pcap_udp(cap.path)
    m = {"dir": tmp, "pcap": cap.path, "sent": {}, "ours": {}, "janus": {}, "pp": {}}
    for port, codec in zip(ports, ("vp8", "opus", "h264")):
        stem, media_type, janus_codec, pp_ext = STREAMS[codec]
        packets = [(t, body) for t, _, dport, body in datagrams if dport == port]
        assert packets, f"nothing captured for {codec}"
        assert {mjr.rtp_ssrc(b) for _, b in packets} == {SSRC[codec]}
        m["sent"][codec] = packets
        path = tmp / f"{stem}.mjr"
        extmap = {13: "urn:3gpp:video-orientation"} if codec == "vp8" else None
        mjr.write_mjr(path, media_type, janus_codec, packets, extmap=extmap)
        m["ours"][codec] = path
        m["pp"][codec] = janus_pp_rec(path, tmp / f"pp-{stem}.{pp_ext}")
        theirs = tmp / f"janus-{stem}.mjr"
        proc = subprocess.run(["pcap2mjr", "-c", janus_codec, "-s", str(SSRC[codec]), cap.path,
                               str(theirs)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        m["janus"][codec] = theirs
    return m


def distinct_timestamps(packets):
    return len({mjr.rtp_timestamp(body) for _, body in packets})


def import_and_convert(tmp, name, files, *extra):
    rec, out = tmp / f"rec-{name}", tmp / f"out-{name}"
    report = json.loads(run_capstan("import-mjr", *files, "--out", rec, "--json", *extra).stdout)
    converted = json.loads(run_capstan("convert", "--in", rec, "--transmux", "--out", out,
                                       "--json").stdout)
    files_by_track = {t["track_id"]: out / t["file"] for t in converted["tracks"]}
    return rec, report, files_by_track


def test_janus_pp_rec_accepts_our_files_and_keeps_every_frame(media):
    for codec, packets in media["sent"].items():
        info = subprocess.run(["janus-pp-rec", "-j", str(media["ours"][codec])], capture_output=True,
                              text=True, check=True).stdout
        assert json.loads(info)["c"] == STREAMS[codec][2]
        parsed = subprocess.run(["janus-pp-rec", "-o", "-p", str(media["ours"][codec])],
                                capture_output=True, text=True, check=True).stdout
        assert f"Counted {len(packets)} RTP packets" in parsed, parsed
        if codec == "vp8":   # the extension map of the info header was read too
            assert "Video orientation extension ID: 13" in parsed, parsed
        clean_decode(media["pp"][codec])
    assert frames_in(media["pp"]["vp8"]) == distinct_timestamps(media["sent"]["vp8"]) == FRAMES
    assert frames_in(media["pp"]["h264"]) == distinct_timestamps(media["sent"]["h264"]) == FRAMES
    assert frames_in(media["pp"]["opus"], audio=True) == len(media["sent"]["opus"])


def test_import_and_transmux_match_janus_pp_rec_and_what_was_sent(media):
    files = [media["ours"][c] for c in ("vp8", "opus", "h264")]
    rec, report, out = import_and_convert(media["dir"], "ours", files)
    tracks = {t["track_id"]: t for t in report["tracks"]}
    assert sorted(tracks) == ["alice-audio", "alice-video", "bob-video"]
    for track_id, codec in (("alice-video", "vp8"), ("alice-audio", "opus"), ("bob-video", "h264")):
        t = tracks[track_id]
        assert (t["codec"], t["ssrc"], t["payload_type"]) == (codec, SSRC[codec], PT[codec])
        assert t["rtp_packets"] == len(media["sent"][codec]) and t["not_rtp"] == 0
        clean_decode(out[track_id])
    assert frames_in(out["alice-video"]) == frames_in(media["pp"]["vp8"]) == \
        distinct_timestamps(media["sent"]["vp8"])
    assert frames_in(out["bob-video"]) == frames_in(media["pp"]["h264"]) == \
        distinct_timestamps(media["sent"]["h264"])
    assert frames_in(out["alice-audio"], audio=True) == frames_in(media["pp"]["opus"], audio=True) \
        == len(media["sent"]["opus"])
    meta = json.load(open(rec / "metadata.json"))
    (alice,) = [p for p in meta["participants"] if p["peer_id"] == "alice"]
    assert sorted(t["track_id"] for t in alice["tracks"]) == ["alice-audio", "alice-video"]
    assert meta["recording"]["source"] == "import-mjr"
    assert meta["recording"]["recording_id"] == "alice"   # the first file's peer


def test_inspect_counts_equal_the_mjr_packet_counts(media):
    rec = media["dir"] / "rec-ours"
    if not rec.exists():
        run_capstan("import-mjr", *[media["ours"][c] for c in ("vp8", "opus", "h264")], "--out", rec)
    inspected = json.loads(run_capstan("inspect", rec, "--json").stdout)
    counts = {t["track_id"]: t["packets"] for t in inspected["tracks"]}
    events = {t["track_id"]: t["events"] for t in inspected["tracks"]}
    assert events == {"alice-video": 1, "alice-audio": 0, "bob-video": 0}   # the extension map
    for track_id, codec in (("alice-video", "vp8"), ("alice-audio", "opus"), ("bob-video", "h264")):
        _, frames = mjr.read_mjr(media["ours"][codec])
        assert counts[track_id] == len(frames), (track_id, counts)


def test_arrival_times_are_the_start_time_plus_each_packets_offset(media):
    """export-pcap writes the imported arrival times: each must be "u" plus the frame's ms,
    which is the captured arrival floored to the millisecond, and the packets are unchanged."""
    tmp = media["dir"]
    rec = tmp / "rec-times"
    run_capstan("import-mjr", media["ours"]["vp8"], media["ours"]["opus"], "--out", rec,
                "--peer", "alice")
    run_capstan("export-pcap", rec, "--out", tmp / "times.pcap")
    exported = mjr.read_pcap_udp(str(tmp / "times.pcap"))
    for codec in ("vp8", "opus"):
        info, frames = mjr.read_mjr(media["ours"][codec])
        mine = [(t, body) for t, _, _, body in exported if mjr.rtp_ssrc(body) == SSRC[codec]]
        assert [body for _, body in mine] == [body for _, body in frames]
        assert [t for t, _ in mine] == [(info["u"] * 1000 + ms * 1_000_000) for ms, _ in frames]
        for (t, _), (sent, _) in zip(mine, media["sent"][codec]):
            assert 0 <= sent - t < 1_000_000, (sent, t)


def test_janus_written_files_import_and_transmux_like_ours(media):
    for codec in ("vp8", "opus", "h264"):
        _, theirs = mjr.read_mjr(media["janus"][codec])
        assert [b for _, b in theirs] == [b for _, b in media["sent"][codec]]
    files = [media["janus"][c] for c in ("vp8", "opus", "h264")]
    rec, report, out = import_and_convert(media["dir"], "janus", files, "--peer", "carol")
    ids = [t["track_id"] for t in report["tracks"]]
    assert ids == ["carol-video", "carol-audio", "carol-video-2"]
    for track_id in ids:
        clean_decode(out[track_id])
    assert frames_in(out["carol-video"]) == frames_in(media["pp"]["vp8"])
    assert frames_in(out["carol-video-2"]) == frames_in(media["pp"]["h264"])
    assert frames_in(out["carol-audio"], audio=True) == len(media["sent"]["opus"])


def test_version_1_file_imports_with_times_from_the_rtp_clock(media):
    """MJR00001 stored no per-packet times: janus-pp-rec still reads it, and capstan times
    each packet by its RTP timestamp from "u"."""
    tmp = media["dir"]
    v1 = tmp / "old-video.mjr"
    mjr.write_mjr(v1, "v", "vp8", media["sent"]["vp8"], version=1)
    pp = janus_pp_rec(v1, tmp / "pp-old-video.webm")
    rec, report, out = import_and_convert(tmp, "v1", [v1])
    (track,) = report["tracks"]
    assert track["mjr_version"] == 1 and track["rtp_packets"] == len(media["sent"]["vp8"])
    clean_decode(out["old-video"])
    assert frames_in(out["old-video"]) == frames_in(pp) == FRAMES
    run_capstan("export-pcap", rec, "--out", tmp / "v1.pcap")
    exported = mjr.read_pcap_udp(str(tmp / "v1.pcap"))
    first_ts = mjr.rtp_timestamp(media["sent"]["vp8"][0][1])
    start = media["sent"]["vp8"][0][0] // 1000 * 1000
    assert len(exported) == len(media["sent"]["vp8"])
    for t, _, _, body in exported:
        ticks = (mjr.rtp_timestamp(body) - first_ts) % 2**32
        assert t == start + ticks * 1_000_000_000 // 90000


def test_cut_file_imports_its_whole_packets_and_says_where_it_was_cut(media, tmp_path):
    data = open(media["ours"]["vp8"], "rb").read()
    _, frames = mjr.read_mjr(media["ours"]["vp8"])
    offsets, pos = [], 10 + int.from_bytes(data[8:10], "big")
    for _, body in frames:
        offsets.append(pos)
        pos += 10 + len(body)
    whole = len(frames) * 2 // 3
    cut = tmp_path / "cut-video.mjr"
    open(cut, "wb").write(data[:offsets[whole] + 15])   # inside frame `whole`
    proc = run_capstan("import-mjr", cut, "--out", tmp_path / "rec", "--json")
    assert re.search(rf"cut short inside a frame at byte {offsets[whole]}; the last 15 bytes "
                     rf"were not imported \({whole} whole packets were\)", proc.stderr), proc.stderr
    (track,) = json.loads(proc.stdout)["tracks"]
    assert track["rtp_packets"] == whole and track["stopped"]["reason"] == "truncated"
    assert track["stopped"]["offset"] == offsets[whole]
    run_capstan("convert", "--in", tmp_path / "rec", "--transmux", "--out", tmp_path / "out")
    clean_decode(tmp_path / "out" / "cut-video.webm")
    kept = distinct_timestamps(media["sent"]["vp8"][:whole])
    # the last frame is dropped when the cut fell between its packets
    assert frames_in(tmp_path / "out" / "cut-video.webm") in (kept, kept - 1)


def write_bytes(path, data):
    open(path, "wb").write(data)
    return path


def test_bad_files_fail_with_a_clear_message_and_write_nothing(media, tmp_path):
    packets = media["sent"]["vp8"][:5]
    cases = {
        "not-mjr": (write_bytes(tmp_path / "x.mjr", open(media["pcap"], "rb").read()[:4000]),
                    "not a Janus .mjr recording"),
        "empty": (write_bytes(tmp_path / "empty.mjr", b""), "empty file"),
        "lying": (write_bytes(tmp_path / "lying.mjr", b"MJR00002\x40\x00{\"t\":\"v\"}"),
                  "info header says 16384 bytes of JSON but only 9 follow"),
        "missing": (tmp_path / "missing.mjr", "cannot open"),
    }
    for name, media_type, codec, kw, says in (
            ("data", "d", "text", {}, "data channel recording"),
            ("e2ee", "v", "vp8", {"encrypted": True}, "end-to-end encrypted"),
            ("speex", "a", "speex", {}, "unknown codec 'speex'")):
        path = tmp_path / f"{name}.mjr"
        mjr.write_mjr(path, media_type, codec, packets, **kw)
        cases[name] = (path, says)
    for name, (path, says) in cases.items():
        out = tmp_path / f"rec-{name}"
        proc = run_capstan("import-mjr", media["ours"]["opus"], path, "--out", out, check=False)
        assert proc.returncode == 1, (name, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("capstan import-mjr: ") and says in proc.stderr, (name, proc.stderr)
        assert str(path) in proc.stderr, (name, proc.stderr)
        assert not out.exists(), name


def test_usage_errors_exit_2_and_help_exits_0(media, tmp_path):
    f = media["ours"]["opus"]
    for args, says in (([], "expected one or more .mjr FILEs"),
                       ([f], "--out DIR is required"),
                       ([f, "--out", tmp_path / "r", "--peer", "../etc"], "--peer takes"),
                       ([f, "--out", tmp_path / "r", "--room", ""], "non-empty ID"),
                       ([f, "--out", tmp_path / "r", "--bogus"], "unknown or incomplete option")):
        proc = run_capstan("import-mjr", *args, check=False)
        assert proc.returncode == 2 and says in proc.stderr, (args, proc.stderr)
    proc = run_capstan("import-mjr", "--help")
    assert proc.stdout.startswith("usage: capstan import-mjr FILE.mjr")
    assert "import-mjr" in run_capstan("--help").stdout
    run_capstan("import-mjr", f, "--out", tmp_path / "twice")
    proc = run_capstan("import-mjr", f, "--out", tmp_path / "twice", check=False)
    assert proc.returncode == 1 and "already holds a recording" in proc.stderr


# ---- a real Janus server recording a plain RTP source (no WebRTC needed) ----

JANUS_PLUGINS = "/usr/lib/x86_64-linux-gnu/janus"


def janus_config(conf, http_port, audio_port, video_port):
    os.makedirs(conf, exist_ok=True)
    others = [p for p in os.listdir(f"{JANUS_PLUGINS}/plugins")
              if p.endswith(".so") and p != "libjanus_streaming.so"]
    transports = [p for p in os.listdir(f"{JANUS_PLUGINS}/transports")
                  if p.endswith(".so") and p != "libjanus_http.so"]
    open(f"{conf}/janus.jcfg", "w").write(f"""
general: {{
    configs_folder = "{conf}"
    plugins_folder = "{JANUS_PLUGINS}/plugins"
    transports_folder = "{JANUS_PLUGINS}/transports"
    events_folder = "{JANUS_PLUGINS}/events"
    loggers_folder = "{JANUS_PLUGINS}/loggers"
    debug_level = 4
}}
certificates: {{}}
media: {{}}
nat: {{}}
plugins: {{ disable = "{','.join(others)}" }}
transports: {{ disable = "{','.join(transports)}" }}
events: {{ broadcast = false }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
""")
    open(f"{conf}/janus.transport.http.jcfg", "w").write(f"""
general: {{ base_path = "/janus" http = true port = {http_port} ip = "127.0.0.1" https = false }}
admin: {{ admin_http = false }}
cors: {{}}
""")
    open(f"{conf}/janus.plugin.streaming.jcfg", "w").write(f"""
general: {{}}
gstreamer: {{
    type = "rtp"
    id = 1
    description = "Opus and VP8 from GStreamer"
    media = (
        {{ type = "audio" mid = "a" label = "audio" port = {audio_port} pt = {PT['opus']} codec = "opus" }},
        {{ type = "video" mid = "v" label = "video" port = {video_port} pt = {PT['vp8']} codec = "vp8" }}
    )
}}
""")


def janus_call(url, body):
    import urllib.request
    body = dict(body, transaction="capstan-test")
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = json.loads(resp.read())
    assert answer["janus"] == "success", answer
    return answer


def free_tcp_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def janus_server(tmp_path):
    """Janus itself with only its streaming plugin and HTTP API, on ports of its own."""
    assert shutil.which("janus"), "the janus package (scripts/setup installs it) is missing"
    import time
    import urllib.error
    http_port = free_tcp_port()
    audio_port, video_port = free_udp_ports(2)
    janus_config(str(tmp_path / "conf"), http_port, audio_port, video_port)
    log = open(tmp_path / "janus.log", "w")
    proc = subprocess.Popen(["janus", "-F", str(tmp_path / "conf"), "-o"], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}/janus"
    deadline = time.time() + 30
    while True:
        try:
            session = janus_call(url, {"janus": "create"})["data"]["id"]
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            assert proc.poll() is None and time.time() < deadline, \
                open(tmp_path / "janus.log").read()[-3000:]
            time.sleep(0.2)
    handle = janus_call(f"{url}/{session}", {"janus": "attach", "plugin": "janus.plugin.streaming"})
    yield {"api": f"{url}/{session}/{handle['data']['id']}", "audio_port": audio_port,
           "video_port": video_port, "dir": tmp_path}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_janus_servers_own_recording_imports_and_transmuxes(janus_server):
    """Janus's streaming plugin records a live RTP mountpoint with its core recorder (the
    same code that records VideoRoom publishers); capstan imports what Janus wrote."""
    j, tmp = janus_server, janus_server["dir"]
    def recording(action, **kw):
        body = {"request": "recording", "action": action, "id": 1, **kw}
        answer = janus_call(j["api"], {"janus": "message", "body": body})
        assert answer["plugindata"]["data"].get("streaming") == "ok", answer
    recording("start", audio=str(tmp / "room-1-user-7-audio"), video=str(tmp / "room-1-user-7-video"))
    cap = Capture(str(tmp / "sent.pcap"), f"udp and (dst port {j['audio_port']} or dst port {j['video_port']})")
    run_sender(["gst-launch-1.0", "-q",
                "videotestsrc", "is-live=true", f"num-buffers={FRAMES}", "pattern=ball", "!",
                "video/x-raw,width=320,height=240,framerate=30/1", "!", *VIDEO["vp8"], "!",
                "udpsink", "host=127.0.0.1", f"port={j['video_port']}",
                "audiotestsrc", "is-live=true", f"num-buffers={AUDIO_PACKETS}", "samplesperbuffer=960", "!",
                "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!", "rtpopuspay", f"pt={PT['opus']}",
                "!", "udpsink", "host=127.0.0.1", f"port={j['audio_port']}"], FRAMES // 30)
    cap.stop()
    recording("stop", audio=True, video=True)
    sent = mjr.read_pcap_udp(cap.path)
    video_mjr, audio_mjr = tmp / "room-1-user-7-video.mjr", tmp / "room-1-user-7-audio.mjr"
    for path, port in ((video_mjr, j["video_port"]), (audio_mjr, j["audio_port"])):
        info, frames = mjr.read_mjr(path)
        assert info["u"] >= info["s"] > 0
        # Janus rewrites SSRC, sequence numbers and timestamps; the payloads are what was sent.
        assert [b[12:] for _, b in frames] == [b[12:] for _, _, d, b in sent if d == port]
    rec, report, out = import_and_convert(tmp, "janus-server", [video_mjr, audio_mjr])
    assert [t["track_id"] for t in report["tracks"]] == ["room-1-user-7-video", "room-1-user-7-audio"]
    for track_id in out:
        clean_decode(out[track_id])
    pp = janus_pp_rec(video_mjr, tmp / "pp.webm")
    sent_video = [(t, b) for t, _, d, b in sent if d == j["video_port"]]
    assert frames_in(out["room-1-user-7-video"]) == frames_in(pp) == distinct_timestamps(sent_video)
    sent_audio = [b for _, _, d, b in sent if d == j["audio_port"]]
    assert frames_in(out["room-1-user-7-audio"], audio=True) == len(sent_audio)
    inspected = json.loads(run_capstan("inspect", rec, "--json").stdout)
    assert {t["track_id"]: t["packets"] for t in inspected["tracks"]} == {
        "room-1-user-7-video": len(sent_video), "room-1-user-7-audio": len(sent_audio)}
