"""Compose against real senders: a room recorded through `capstan serve` from GStreamer
peers, each sending its own solid colour (videotestsrc pattern=solid-color, VP8) and its
own tone (audiotestsrc, Opus, with the RFC 6464 audio-level extension), one peer joining
and one leaving mid-recording. The composed files are judged by ffmpeg: pixels sampled in
each layout cell at chosen times, the frame where the grid reflows against the timeline's
join and leave, a pin and the speaker filling the main region, a muted peer's tone absent
from the mix (Goertzel), a screenshare filling the large region, a flash and a beep from
one sender staying within 20 ms, clean decodes, durations within one frame. Every test
runs on the local folder and on an S3 server (the `storage` fixture of conftest.py)."""
import json
import math
import os
import re
import struct
import subprocess
import time

import pytest

from conftest import run_capstan
from daemon import Daemon

W, H, FPS = 640, 360, 30          # composed canvas for the tests
SRC_W, SRC_H = 320, 180           # what each peer sends (16:9, like the grid cells)

# peer: (colour RGB, tone Hz, tone volume, video SSRC, audio SSRC)
PEERS = {
    "alice": ((255, 0, 0), 440, 0.15, 0x0A000001, 0x0A000002),
    "bob": ((0, 255, 0), 660, 0.05, 0x0B000001, 0x0B000002),
    "carol": ((0, 0, 255), 880, 0.05, 0x0C000001, 0x0C000002),
    "dave": ((255, 0, 255), 1100, 0.6, 0x0D000001, 0x0D000002),
}
PLACEHOLDER = (56, 56, 56)
BLACK = (0, 0, 0)
CYAN = (0, 255, 255)

JOIN_AT = 2.5      # dave joins (s after the senders start)
LEAVE_AT = 4.5     # bob leaves
END_AT = 7.0       # the others stop


def gst_colour(rgb):
    return "0xff%02x%02x%02x" % rgb


def peer_sender(port, name, seconds, level_ext=True):
    """One peer through rtpbin (RTCP SR on): live solid colour VP8 and a live tone in Opus
    carrying its audio level (RFC 6464, id 1) computed by GStreamer's level element."""
    rgb, freq, volume, vssrc, assrc = PEERS[name]
    caps = ["application/x-rtp,extmap-1=(string)<\"\",urn:ietf:params:rtp-hdrext:ssrc-audio-level,\"vad=on\">"]
    ext = ["auto-header-extension=true", "!", *caps] if level_ext else []
    return [
        "gst-launch-1.0", "-q", "rtpbin", "name=rb",
        "videotestsrc", "is-live=true", f"num-buffers={int(seconds * 30)}", "pattern=solid-color",
        f"foreground-color={gst_colour(rgb)}", "!", f"video/x-raw,width={SRC_W},height={SRC_H},framerate=30/1",
        "!", "vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!",
        "rtpvp8pay", "pt=96", "mtu=1200", f"ssrc={vssrc}", "!", "rb.send_rtp_sink_0",
        "rb.send_rtp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={port}",
        "rb.send_rtcp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={port}", "sync=false", "async=false",
        "audiotestsrc", "is-live=true", f"num-buffers={int(seconds * 50)}", "samplesperbuffer=960",
        f"freq={freq}", f"volume={volume}", "!", "audio/x-raw,rate=48000,channels=2", "!",
        "level", "audio-level-meta=true", "!", "opusenc", "!", "rtpopuspay", "pt=111", f"ssrc={assrc}", *ext,
        "!", "rb.send_rtp_sink_1", "rb.send_rtp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={port}",
        "rb.send_rtcp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={port}", "sync=false", "async=false",
    ]


def producer(pid, peer, kind, codec, ssrc, **extra):
    body = {"producer_id": pid, "peer_id": peer, "kind": kind, "codec": codec,
            "payload_type": 96 if codec == "vp8" else 111, "ssrc": ssrc,
            "clock_rate": 48000 if kind == "audio" else 90000, "channels": 2 if kind == "audio" else 0}
    body.update(extra)
    return body


def add_peer(d, room, name):
    d.ok("POST", f"/rooms/{room}/peers", {"peer_id": name, "display_name": name.title()})
    _, _, _, vssrc, assrc = PEERS[name]
    d.ok("POST", f"/rooms/{room}/producers", producer(f"{name}-cam", name, "video", "vp8", vssrc))
    d.ok("POST", f"/rooms/{room}/producers", producer(f"{name}-mic", name, "audio", "opus", assrc))


class Senders:
    """Sender processes started at chosen moments. GStreamer pipelines through rtpbin may
    stay up after their last buffer, so they are stopped once the recording is."""

    def __init__(self):
        self.procs = []

    def start(self, cmd):
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(2)
        for p in self.procs:
            try:
                _, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            # a sender that failed on its own (not stopped by us) makes the recording useless
            assert p.returncode in (0, -2, -9, 130), err[-2000:]


def wait_until(t0, at):
    time.sleep(max(0.0, at - (time.monotonic() - t0)))


def record_room(data_dir):
    """Alice, Bob and Carol from the start; Dave joins at JOIN_AT, Bob leaves at LEAVE_AT."""
    d = Daemon(data_dir).start()
    senders = Senders()
    try:
        d.ok("PUT", "/rooms/meet", {"room_name": "Meet", "host_id": "alice"})
        for name in ("alice", "bob", "carol"):
            add_peer(d, "meet", name)
        rec = d.ok("POST", "/rooms/meet/recordings", {"requester_id": "alice"})
        port = rec["rtp"]["udp_port"]
        t0 = time.monotonic()
        senders.start(peer_sender(port, "alice", END_AT))
        senders.start(peer_sender(port, "carol", END_AT))
        senders.start(peer_sender(port, "bob", LEAVE_AT))
        wait_until(t0, JOIN_AT)
        add_peer(d, "meet", "dave")
        senders.start(peer_sender(port, "dave", END_AT - JOIN_AT))
        wait_until(t0, LEAVE_AT + 0.1)
        d.ok("DELETE", "/rooms/meet/peers/bob")
        wait_until(t0, END_AT + 0.5)
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
        return d.recording_dir("meet", rec["recording_id"])
    finally:
        senders.stop()
        d.stop()


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    return record_room(tmp_path_factory.mktemp("compose") / "data")


# ---- a second room: a screenshare, and one sender whose flashes and beeps coincide ----

SHARE_AT = 1.5     # frank's screen starts
SHARE_SECONDS = 5.0
ROOM_B_SECONDS = 8.0
ERIN = (0x0E000001, 0x0E000002)
FRANK = (0x0F000001, 0x0F000002)   # camera, screen


def flash_beep_source(path, seconds):
    """Black 320x180 VP8 that flashes white for 0.1 s every second; Opus that beeps (1 kHz,
    half full scale) for 0.1 s at the same instants."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-t", str(seconds), "-i",
        f"color=c=black:s={SRC_W}x{SRC_H}:r=30,drawbox=c=white:t=fill:enable='lt(mod(t\\,1)\\,0.1)'",
        "-f", "lavfi", "-t", str(seconds), "-i",
        "sine=f=1000:r=48000:samples_per_frame=480,volume='if(lt(mod(t\\,1)\\,0.1)\\,4\\,0)':eval=frame",
        "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "300k",
        "-c:a", "libopus", "-ac", "2", str(path)], check=True, timeout=60)


def file_sender(port, path, vssrc, assrc):
    """A recorded file sent in real time through rtpbin (one CNAME, Sender Reports on)."""
    q = ["queue", "max-size-time=0", "max-size-buffers=0", "max-size-bytes=0"]
    return ["gst-launch-1.0", "-q", "rtpbin", "name=rb", "filesrc", f"location={path}", "!", "matroskademux", "name=d",
            "d.video_0", "!", *q, "!", "rtpvp8pay", "pt=96", f"ssrc={vssrc}", "!", "rb.send_rtp_sink_0",
            "rb.send_rtp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={port}",
            "rb.send_rtcp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={port}", "sync=false", "async=false",
            "d.audio_0", "!", *q, "!", "rtpopuspay", "pt=111", f"ssrc={assrc}", "!", "rb.send_rtp_sink_1",
            "rb.send_rtp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={port}",
            "rb.send_rtcp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={port}", "sync=false", "async=false"]


def video_sender(port, rgb, ssrc, seconds):
    return ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", f"num-buffers={int(seconds * 30)}",
            "pattern=solid-color", f"foreground-color={gst_colour(rgb)}", "!",
            f"video/x-raw,width={SRC_W},height={SRC_H},framerate=30/1", "!", "vp8enc", "deadline=1",
            "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=30", "!", "rtpvp8pay", "pt=96", "mtu=1200",
            f"ssrc={ssrc}", "!", "udpsink", "host=127.0.0.1", f"port={port}"]


def record_share_room(data_dir, work):
    source = os.path.join(work, "erin.mkv")
    flash_beep_source(source, ROOM_B_SECONDS)
    d = Daemon(data_dir).start()
    senders = Senders()
    try:
        d.ok("PUT", "/rooms/share", {"room_name": "Share", "host_id": "erin"})
        d.ok("POST", "/rooms/share/peers", {"peer_id": "erin", "display_name": "Erin"})
        d.ok("POST", "/rooms/share/peers", {"peer_id": "frank", "display_name": "Frank"})
        d.ok("POST", "/rooms/share/producers", producer("erin-cam", "erin", "video", "vp8", ERIN[0]))
        d.ok("POST", "/rooms/share/producers", producer("erin-mic", "erin", "audio", "opus", ERIN[1]))
        d.ok("POST", "/rooms/share/producers", producer("frank-cam", "frank", "video", "vp8", FRANK[0]))
        d.ok("POST", "/rooms/share/producers", producer("frank-screen", "frank", "video", "vp8", FRANK[1],
                                                        is_screenshare=True))
        rec = d.ok("POST", "/rooms/share/recordings", {"requester_id": "erin"})
        port = rec["rtp"]["udp_port"]
        t0 = time.monotonic()
        senders.start(file_sender(port, source, *ERIN))
        senders.start(video_sender(port, PEERS["bob"][0], FRANK[0], ROOM_B_SECONDS))
        wait_until(t0, SHARE_AT)
        senders.start(video_sender(port, CYAN, FRANK[1], SHARE_SECONDS))
        wait_until(t0, ROOM_B_SECONDS + 0.5)
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
        return d.recording_dir("share", rec["recording_id"])
    finally:
        senders.stop()
        d.stop()


@pytest.fixture(scope="module")
def share_room(tmp_path_factory):
    work = tmp_path_factory.mktemp("share")
    return record_share_room(work / "data", str(work))


# ---- judges ----

def timeline(rec_dir):
    return json.load(open(os.path.join(rec_dir, "timeline.json")))["events"]


def event_t(rec_dir, type_, peer):
    (t,) = [e["t"] for e in timeline(rec_dir) if e["type"] == type_ and e.get("peer_id") == peer]
    return t / 1000


def recording_seconds(rec_dir):
    (t,) = [e["t"] for e in timeline(rec_dir) if e["type"] == "recording_stopped"]
    return t / 1000


def track_start(summary, track_id):
    """When a track's first frame is on the recording's timeline (s), from compose's report."""
    (track,) = [t for t in summary["tracks"] if t["track_id"] == track_id]
    return track["start_ms"] / 1000


@pytest.fixture(autouse=True)
def _backend(storage):
    """Every compose of every test here runs on the local folder and on S3."""
    global STORAGE
    STORAGE = storage
    yield


STORAGE = None


def compose(rec_dir, out, *args):
    proc = STORAGE.compose(rec_dir, out, "--json", *args)
    return json.loads(proc.stdout)["compose"]


def clean_decode(path):
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,width,height,nb_read_frames,start_time,duration,"
                          "sample_rate:format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def frames_rgb(path, points):
    """For every frame of the file, the RGB colour at each (x, y) of points."""
    proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                             "-vsync", "passthrough", "-"], stdout=subprocess.PIPE)
    size = W * H * 3
    out = []
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        row = []
        for x, y in points:
            # the mean of a 5x5 patch, away from codec noise at edges
            acc = [0, 0, 0]
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    i = ((y + dy) * W + (x + dx)) * 3
                    for c in range(3):
                        acc[c] += buf[i + c]
            row.append(tuple(v / 25 for v in acc))
        out.append(row)
    proc.wait()
    return out


NAMED = {"alice": PEERS["alice"][0], "bob": PEERS["bob"][0], "carol": PEERS["carol"][0],
         "dave": PEERS["dave"][0], "placeholder": PLACEHOLDER, "black": BLACK, "cyan": CYAN}


def bright_pixels(path, index, rect):
    """How many near-white pixels frame `index` has inside rect (x, y, w, h)."""
    x0, y0, w, h = rect
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index})", "-vsync", "0",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    assert len(raw) == W * H * 3
    count = 0
    for y in range(y0, y0 + h):
        row = raw[(y * W + x0) * 3:(y * W + x0 + w) * 3]
        count += sum(1 for i in range(0, len(row), 3) if row[i] > 200 and row[i + 1] > 200 and row[i + 2] > 200)
    return count


def name_of(rgb):
    best = min(NAMED, key=lambda n: sum((a - b) ** 2 for a, b in zip(rgb, NAMED[n])))
    dist = math.sqrt(sum((a - b) ** 2 for a, b in zip(rgb, NAMED[best])))
    return best if dist < 60 else f"?{tuple(int(v) for v in rgb)}"


def names_at(frames, index):
    return [name_of(c) for c in frames[index]]


def frame_at(t):
    """The first output frame at or after t seconds."""
    return math.ceil(round(t * FPS, 6))


def pcm(path, rate=48000):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"],
                         capture_output=True, check=True).stdout
    return struct.unpack(f"<{len(raw) // 2}h", raw)


def goertzel_db(samples, freq, rate=48000):
    """Power of one frequency over the samples, in dB (relative to full scale)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x / 32768 + k * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 10 * math.log10(max(power, 1e-12) / (len(samples) ** 2 / 4))


# cells of the 640x360 grid: 3 tiles -> 2x2 with the third centred below; 4 tiles -> 2x2
TOP_LEFT, TOP_RIGHT = (160, 90), (480, 90)
BOTTOM_MIDDLE, BOTTOM_LEFT, BOTTOM_RIGHT = (320, 270), (100, 270), (540, 270)
# focus layouts: main region 640x288 above a 72 px strip
MAIN = (320, 144)


# ---- tests ----

def test_grid_shows_each_peer_in_its_cell_and_reflows_on_join_and_leave(room, tmp_path):
    out = tmp_path / "grid.mp4"
    summary = compose(room, out, "--compose-video", "--compose-audio", "--resolution", f"{W}x{H}")
    ok, errors = clean_decode(out)
    assert ok, errors
    info = probe(out)
    video = [s for s in info["streams"] if s["codec_type"] == "video"][0]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"][0]
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    assert (video["width"], video["height"]) == (W, H)
    # as long as the recording, to one frame; audio and video start together
    length = recording_seconds(room)
    assert abs(float(info["format"]["duration"]) - length) <= 1 / FPS + 0.001, (info["format"], length)
    assert abs(int(video["nb_read_frames"]) - length * FPS) <= 1
    assert abs(float(audio["duration"]) - float(video["duration"])) <= 1 / FPS
    assert abs(float(audio["start_time"]) - float(video["start_time"])) <= 0.020
    assert summary["video_frames"] == int(video["nb_read_frames"])

    points = [TOP_LEFT, TOP_RIGHT, BOTTOM_MIDDLE, BOTTOM_LEFT, BOTTOM_RIGHT]
    frames = frames_rgb(out, points)
    joined, left = event_t(room, "peer_joined", "dave"), event_t(room, "peer_left", "bob")
    # before the join: alice, bob on top, carol centred below
    assert names_at(frames, frame_at(joined) - 10)[:3] == ["alice", "bob", "carol"]
    assert names_at(frames, frame_at(joined) - 10)[3:] == ["black", "black"]
    # dave in: four cells; his tile shows his colour once his video arrives
    dave_video = track_start(summary, "dave-video")
    after_join = names_at(frames, frame_at(dave_video) + 15)
    assert after_join[:2] == ["alice", "bob"] and after_join[3:] == ["carol", "dave"], after_join
    # bob out: alice and carol on top, dave centred below
    after_leave = names_at(frames, frame_at(left) + 15)
    assert after_leave[:3] == ["alice", "carol", "dave"], after_leave

    # the reflows happen at the timeline's times, to one frame
    reflow_in = next(i for i, row in enumerate(frames) if name_of(row[3]) == "carol")
    assert abs(reflow_in - frame_at(joined)) <= 1, (reflow_in, joined)
    reflow_out = next(i for i in range(reflow_in, len(frames)) if name_of(frames[i][3]) == "black")
    assert abs(reflow_out - frame_at(left)) <= 1, (reflow_out, left)
    # between his join and his first picture Dave is a placeholder, never another colour
    dave_tiles = [name_of(frames[i][4]) for i in range(reflow_in, reflow_out)]
    assert set(dave_tiles) <= {"placeholder", "dave"}, dave_tiles
    assert dave_tiles[0] == "placeholder" and dave_tiles[-1] == "dave", dave_tiles
    # and the placeholder carries his name: white text in the middle of the grey tile
    cell = (320, 180, 320, 180)
    assert bright_pixels(out, reflow_in, cell) > 40
    assert bright_pixels(out, reflow_in - 5, cell) == 0      # carol's blue, before the reflow


def test_pin_fills_the_main_region_from_its_time(room, tmp_path):
    composition = tmp_path / "composition.json"
    composition.write_text(json.dumps({
        "recording_id": os.path.basename(room), "room_id": "meet", "layout": "grid",
        "timeline": [{"t": 0, "type": "layout", "layout": "grid"}, {"t": 1500, "type": "pin", "peer_id": "carol"},
                     {"t": 3500, "type": "unpin"}],
        "tracks": [], "export": {"resolution": f"{W}x{H}", "fps": FPS}}))
    out = tmp_path / "pinned.mp4"
    compose(room, out, "--compose-video", "--composition", composition)
    info = probe(out)
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (W, H)   # from the composition
    frames = frames_rgb(out, [MAIN, TOP_LEFT])
    pinned = next(i for i, row in enumerate(frames) if name_of(row[0]) == "carol")
    assert abs(pinned - frame_at(1.5)) <= 1, pinned
    assert {name_of(frames[i][0]) for i in range(pinned, frame_at(3.5) - 1)} == {"carol"}
    # back to the grid at the unpin: alice top left again
    assert name_of(frames[frame_at(3.5) + 2][1]) == "alice"


@pytest.mark.parametrize("source", ["auto", "energy"])
def test_speaker_layout_follows_the_loudest_peer(room, tmp_path, source):
    out = tmp_path / f"speaker-{source}.mp4"
    summary = compose(room, out, "--compose-video", "--layout", "speaker", "--resolution", f"{W}x{H}",
                      "--speaker-from", source)
    assert summary["speaker_from_audio_level"] == (source == "auto")
    frames = frames_rgb(out, [MAIN])
    speaks = track_start(summary, "dave-audio")
    # alice is the loudest of the first three; dave, much louder, takes over once he speaks
    assert name_of(frames[frame_at(1.5)][0]) == "alice"
    assert name_of(frames[frame_at(speaks + 2.0)][0]) == "dave"
    switch = next(i for i in range(frame_at(event_t(room, "peer_joined", "dave")), len(frames))
                  if name_of(frames[i][0]) == "dave")
    # hysteresis: not before he has been louder for the hold time (0.4 s), and not much later
    assert frame_at(speaks + 0.3) <= switch <= frame_at(speaks + 1.0), (switch, speaks)
    assert summary["speaker_changes"] >= 1


def test_muted_peer_is_absent_from_the_mix_and_audio_alone_goes_to_m4a(room, tmp_path):
    composition = tmp_path / "muted.json"
    composition.write_text(json.dumps({"layout": "grid", "timeline": [],
                                       "tracks": [{"peer_id": "bob", "muted": True},
                                                  {"peer_id": "alice", "muted": False}]}))
    out = tmp_path / "mix.m4a"
    summary = compose(room, out, "--compose-audio", "--composition", composition)
    ok, errors = clean_decode(out)
    assert ok, errors
    info = probe(out)
    assert [s["codec_name"] for s in info["streams"]] == ["aac"]
    assert abs(float(info["format"]["duration"]) - recording_seconds(room)) <= 0.03
    muted = [t for t in summary["tracks"] if t["muted"]]
    assert [t["peer_id"] for t in muted] == ["bob"]
    samples = pcm(out)
    window = samples[int(1.0 * 48000):int(2.0 * 48000)]       # everyone but dave is sending
    level = {name: goertzel_db(window, PEERS[name][1]) for name in ("alice", "bob", "carol")}
    assert level["alice"] > -40 and level["carol"] > -50, level
    assert level["bob"] < level["carol"] - 30, level
    # the unmuted mix has bob
    plain = tmp_path / "plain.m4a"
    compose(room, plain, "--compose-audio")
    window = pcm(plain)[int(1.0 * 48000):int(2.0 * 48000)]
    assert goertzel_db(window, PEERS["bob"][1]) > -50


def test_webm_vp9_and_ogg_and_thumbnails(room, tmp_path):
    webm = tmp_path / "room.webm"
    summary = compose(room, webm, "--compose-video", "--compose-audio", "--video-codec", "vp9",
                      "--resolution", f"{W}x{H}", "--thumbnails", tmp_path / "thumbs", "--thumbnail-every", "2")
    ok, errors = clean_decode(webm)
    assert ok, errors
    info = probe(webm)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["opus", "vp9"]
    assert abs(float(info["format"]["duration"]) - recording_seconds(room)) <= 1 / FPS + 0.01
    frames = frames_rgb(webm, [TOP_LEFT])
    assert name_of(frames[frame_at(1.5)][0]) == "alice"
    thumbs = sorted(p for p in os.listdir(tmp_path / "thumbs") if p.startswith("thumb_"))
    assert len(thumbs) == math.ceil(recording_seconds(room) / 2) == summary["thumbnails"]
    for name in thumbs + ["contact_sheet.jpg"]:
        ok, errors = clean_decode(tmp_path / "thumbs" / name)
        assert ok, (name, errors)
    sheet = probe(tmp_path / "thumbs" / "contact_sheet.jpg")["streams"][0]
    assert sheet["width"] > 320 and sheet["height"] > 180

    ogg = tmp_path / "room.ogg"
    compose(room, ogg, "--compose-audio")
    ok, errors = clean_decode(ogg)
    assert ok, errors
    assert [s["codec_name"] for s in probe(ogg)["streams"]] == ["opus"]


def test_bad_compose_input_is_refused_with_a_message(room, tmp_path):
    def refused(*args, code=None):
        proc = run_capstan("convert", *args, check=False)
        assert proc.returncode != 0 and "capstan convert:" in proc.stderr, proc
        if code is not None:
            assert proc.returncode == code
        return proc.stderr

    out = tmp_path / "x.mp4"
    assert "--layout" in refused("--in", room, "--compose-video", "--layout", "mosaic", code=2)
    assert "--resolution" in refused("--in", room, "--compose-video", "--resolution", "641x360", code=2)
    assert "holds no video" in refused("--in", room, "--compose-video", "--compose-out", tmp_path / "x.m4a")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not JSON" in refused("--in", room, "--compose-video", "--composition", bad, "--compose-out", out)
    bad.write_text(json.dumps({"timeline": [{"t": 5, "type": "zoom"}]}))
    assert "timeline[0].type" in refused("--in", room, "--compose-video", "--composition", bad, "--compose-out", out)
    bad.write_text(json.dumps({"export": {"resolution": "huge"}}))
    assert "export.resolution" in refused("--in", room, "--compose-video", "--composition", bad, "--compose-out", out)
    assert "no such folder" in refused("--in", tmp_path / "missing", "--compose-audio")
    assert not out.exists()


# screenshare layout with three tiles (erin, frank, the share): the share above, the two
# cameras in the strip (128x72 each, centred: x 192..320 and 320..448, y 288..360)
ERIN_TILE = (192, 288, 128, 72)
FRANK_TILE = (320 + 64, 288 + 36)


def onsets(lines, key, threshold):
    times, last_t, above = [], None, False
    for line in lines:
        m = re.search(r"pts_time:(-?[0-9.]+)", line)
        if m:
            last_t = float(m.group(1))
            continue
        m = re.search(re.escape(key) + r"=(-?[0-9.inf]+)", line)
        if m and last_t is not None:
            value = float(m.group(1))
            if value > threshold and not above:
                times.append(last_t)
            above = value > threshold
    return times


def test_screenshare_fills_the_large_region_and_flash_meets_beep(share_room, tmp_path):
    out = tmp_path / "share.mp4"
    fps = 60     # finer ticks, so the picture's own quantization (half a tick) stays small
    summary = compose(share_room, out, "--compose-video", "--compose-audio", "--layout", "screenshare",
                      "--resolution", f"{W}x{H}", "--fps", str(fps))
    ok, errors = clean_decode(out)
    assert ok, errors
    screen = [t for t in summary["tracks"] if t["kind"] == "screen"]
    assert len(screen) == 1 and screen[0]["used"]
    share_start = screen[0]["start_ms"] / 1000
    frames = frames_rgb(out, [MAIN, FRANK_TILE, TOP_LEFT])
    per_frame = 1 / fps
    first_share = next(i for i, row in enumerate(frames) if name_of(row[0]) == "cyan")
    # the share takes the large region as soon as its first picture is there
    assert abs(first_share * per_frame - share_start) <= 2 * per_frame, (first_share, share_start)
    # before it, the grid (erin top left, black when not flashing); with it, frank in the strip
    assert name_of(frames[int(1.0 * fps)][1]) != "bob"
    mid = int((share_start + 2) * fps)
    assert name_of(frames[mid][0]) == "cyan" and name_of(frames[mid][1]) == "bob", names_at(frames, mid)
    # after the share stops, back to the grid: no cyan anywhere
    end = int((share_start + SHARE_SECONDS + 1) * fps)
    assert "cyan" not in names_at(frames, end)

    # A/V sync through the whole chain: erin's flashes (in her strip tile while the share is
    # up) against her beeps in the mix
    x, y, w, h = ERIN_TILE
    video = subprocess.run(["ffmpeg", "-v", "error", "-copyts", "-i", str(out), "-vf",
                            f"crop={w}:{h}:{x}:{y},signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
                            "-an", "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    audio = subprocess.run(["ffmpeg", "-v", "error", "-copyts", "-i", str(out), "-vn", "-af",
                            "asetnsamples=n=96,astats=metadata=1:reset=1,"
                            "ametadata=print:key=lavfi.astats.Overall.RMS_level:file=-",
                            "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    flashes = [t for t in onsets(video.splitlines(), "lavfi.signalstats.YAVG", 100)
               if share_start + 0.5 < t < share_start + SHARE_SECONDS - 0.5]
    beeps = onsets(audio.splitlines(), "lavfi.astats.Overall.RMS_level", -30)
    assert len(flashes) >= 3, flashes
    worst = max(min(abs(b - f) for b in beeps) for f in flashes)
    assert worst <= 0.020, (flashes, beeps)
