"""H.264 whose parameter sets come only from the SDP fmtp (sprop-parameter-sets): a relay
takes every in-band SPS and PPS out of a real x264 stream (renumbering what remains, as a
sender that never sent them would), the capture is imported with an SDP carrying them, and
the transmuxed MP4 plays: a clean decode of every frame."""
import base64
import json
import socket
import struct
import subprocess
import threading

from conftest import Capture, free_udp_ports, run_capstan, run_sender

FRAMES = 90


def strip_parameter_sets(listen, target, found, stop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", listen))
    sock.settimeout(0.1)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    removed = 0
    while not stop.is_set():
        try:
            data = bytearray(sock.recv(65536))
        except socket.timeout:
            continue
        if len(data) > 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
            nal = data[12]
            if nal & 0x1F in (7, 8):
                found.setdefault(nal & 0x1F, bytes(data[12:]))
                removed += 1
                continue
            seq = (struct.unpack(">H", data[2:4])[0] - removed) & 0xFFFF
            data[2:4] = struct.pack(">H", seq)
        out.sendto(bytes(data), ("127.0.0.1", target))
    sock.close()
    out.close()


def test_parameter_sets_only_in_the_fmtp_still_play(tmp_path):
    relay_port, out_port = free_udp_ports(1)[0], free_udp_ports(1)[0]
    cap = Capture(str(tmp_path / "h264.pcap"), f"udp and dst port {out_port}")
    found, stop = {}, threading.Event()
    relay = threading.Thread(target=strip_parameter_sets, args=(relay_port, out_port, found, stop))
    relay.start()
    run_sender(["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", f"num-buffers={FRAMES}",
                "pattern=ball", "!", "video/x-raw,width=320,height=240,framerate=30/1", "!",
                "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!",
                "rtph264pay", "pt=96", "mtu=600", "config-interval=-1", "aggregate-mode=none", "!",
                "udpsink", "host=127.0.0.1", f"port={relay_port}"], 10)
    stop.set()
    relay.join()
    cap.stop()
    assert 7 in found and 8 in found, "the sender sent no in-band SPS/PPS to take out"
    sprop = ",".join(base64.b64encode(found[t]).decode() for t in (7, 8))
    sdp = tmp_path / "h264.sdp"
    sdp.write_text("v=0\no=- 0 0 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
                   f"m=video {out_port} RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                   f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sprop}\n")
    run_capstan("import-pcap", cap.path, "--out", tmp_path / "rec", "--sdp", sdp)
    report = json.loads(run_capstan("convert", "--in", tmp_path / "rec", "--transmux", "--out",
                                    tmp_path / "out", "--json").stdout)
    (track,) = report["tracks"]
    assert track["codec"] == "h264" and track["lost"] == 0
    path = str(tmp_path / "out" / track["file"])
    proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                             "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert int(frames) == FRAMES
    # and without the fmtp the same capture cannot make a playable file
    run_capstan("import-pcap", cap.path, "--out", tmp_path / "bare", "--map", "96=H264/90000")
    bare = json.loads(run_capstan("convert", "--in", tmp_path / "bare", "--transmux", "--out",
                                  tmp_path / "bare-out", "--json", check=False).stdout or "{}")
    bare_track = (bare.get("tracks") or [{}])[0]
    if bare_track.get("file"):
        proc = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i",
                               str(tmp_path / "bare-out" / bare_track["file"]), "-f", "null", "-"],
                              capture_output=True, text=True)
        assert proc.returncode != 0 or proc.stderr.strip()
