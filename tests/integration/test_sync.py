"""Sync: a sender whose video flashes and whose audio beeps at the same instants, with the
audio starting two seconds after the video, RTCP Sender Reports on (GStreamer rtpbin, one
CNAME). After capture, import and transmux, the flashes and beeps placed on the
recording's timeline (the outputs' own timestamps) must coincide within 20 ms."""
import re
import subprocess

from conftest import Capture, free_udp_ports, run_capstan, run_sender


def make_source(path):
    """6 s of VP8 flashing white for 0.1 s every second; Opus beeping for 0.1 s every
    second, starting at 2 s (so beeps fall on flashes 2, 3, 4, 5)."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-t", "6", "-i",
        "color=c=black:s=160x120:r=30,drawbox=c=white:t=fill:enable='lt(mod(t\\,1)\\,0.1)'",
        "-f", "lavfi", "-t", "4", "-i",
        "sine=f=1000:r=48000,volume='if(lt(mod(t\\,1)\\,0.1)\\,1\\,0)':eval=frame",
        "-filter_complex", "[1:a]asetpts=PTS+2/TB[a]", "-map", "0:v", "-map", "[a]",
        "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "30", "-b:v", "300k",
        "-c:a", "libopus", "-ac", "2", str(path)], check=True, timeout=60)


def onsets(lines, key, threshold):
    """Times where the value crosses above threshold, from ffmpeg metadata=print output."""
    times, last_t, above = [], None, False
    for line in lines:
        m = re.search(r"pts_time:(-?[0-9.]+)", line)
        if m:
            last_t = float(m.group(1))
            continue
        m = re.search(re.escape(key) + r"=(-?[0-9.inf]+)", line)
        if m and last_t is not None:
            value = float(m.group(1)) if m.group(1) not in ("-inf", "inf") else float(m.group(1))
            if value > threshold and not above:
                times.append(last_t)
            above = value > threshold
    return times


def flash_times(path):
    out = subprocess.run(["ffmpeg", "-v", "error", "-copyts", "-i", path, "-vf",
                          "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    return onsets(out.splitlines(), "lavfi.signalstats.YAVG", 100)


def beep_times(path):
    out = subprocess.run(["ffmpeg", "-v", "error", "-copyts", "-i", path, "-af",
                          "asetnsamples=n=96,astats=metadata=1:reset=1,"
                          "ametadata=print:key=lavfi.astats.Overall.RMS_level:file=-",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    return onsets(out.splitlines(), "lavfi.astats.Overall.RMS_level", -30)


def test_flash_and_beep_line_up_on_the_recording_timeline(tmp_path):
    src = tmp_path / "src.mkv"
    make_source(src)
    p = free_udp_ports(4)
    cap = Capture(str(tmp_path / "sync.pcap"), f"udp and portrange {p[0]}-{p[3]}")
    q = ["queue", "max-size-time=0", "max-size-buffers=0", "max-size-bytes=0"]
    run_sender([
        "gst-launch-1.0", "-q", "rtpbin", "name=rb", "filesrc", f"location={src}", "!",
        "matroskademux", "name=d",
        "d.video_0", "!", *q, "!", "rtpvp8pay", "pt=96", "ssrc=1", "!", "rb.send_rtp_sink_0",
        "rb.send_rtp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={p[0]}",
        "rb.send_rtcp_src_0", "!", "udpsink", "host=127.0.0.1", f"port={p[1]}", "sync=false", "async=false",
        "d.audio_0", "!", *q, "!", "rtpopuspay", "pt=111", "ssrc=2", "!", "rb.send_rtp_sink_1",
        "rb.send_rtp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={p[2]}",
        "rb.send_rtcp_src_1", "!", "udpsink", "host=127.0.0.1", f"port={p[3]}", "sync=false", "async=false",
    ], 6)
    cap.stop()
    run_capstan("import-pcap", cap.path, "--out", tmp_path / "rec", "--map", "96=VP8/90000",
                "--map", "111=opus/48000/2")
    run_capstan("convert", "--in", tmp_path / "rec", "--transmux", "--out", tmp_path / "out")
    flashes = flash_times(str(tmp_path / "out" / "ssrc-00000001-video.webm"))
    beeps = beep_times(str(tmp_path / "out" / "ssrc-00000002-audio.ogg"))
    assert len(flashes) == 6, flashes
    assert len(beeps) == 4, beeps
    # the audio track starts about 2 s late, as it was sent
    assert 1.8 < beeps[0] - flashes[0] < 2.2
    worst = max(min(abs(b - f) for f in flashes) for b in beeps)
    assert worst <= 0.020, (flashes, beeps)
