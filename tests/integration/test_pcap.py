"""import-pcap / export-pcap / inspect against real captures of real senders, judged by
tshark's own decoding."""
import collections
import json
import os
import shutil
import subprocess

import pytest

from conftest import free_udp_ports, run_capstan, run_sender, tshark_fields

VIDEO_SSRC = 0x1234ABCD
AUDIO_SSRC = 0x0BADCAFE


def gst_vp8_opus_rtpbin(ports, seconds, host="127.0.0.1"):
    """GStreamer sends VP8 + Opus through rtpbin (with RTCP SR) for `seconds`."""
    frames = seconds * 30
    buffers = seconds * 48000 // 1024
    return [
        "gst-launch-1.0", "-q", "rtpbin", "name=rb",
        "videotestsrc", "is-live=true", f"num-buffers={frames}", "pattern=ball", "!",
        "video/x-raw,width=320,height=240,framerate=30/1", "!",
        "vp8enc", "deadline=1", "cpu-used=8", "lag-in-frames=0", "keyframe-max-dist=60", "!",
        "rtpvp8pay", "pt=96", "mtu=1200", f"ssrc={VIDEO_SSRC}", "!", "rb.send_rtp_sink_0",
        "rb.send_rtp_src_0", "!", "udpsink", f"host={host}", f"port={ports[0]}",
        "rb.send_rtcp_src_0", "!", "udpsink", f"host={host}", f"port={ports[1]}",
        "sync=false", "async=false",
        "audiotestsrc", "is-live=true", f"num-buffers={buffers}", "!",
        "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!",
        "rtpopuspay", "pt=111", f"ssrc={AUDIO_SSRC}", "!", "rb.send_rtp_sink_1",
        "rb.send_rtp_src_1", "!", "udpsink", f"host={host}", f"port={ports[2]}",
        "rb.send_rtcp_src_1", "!", "udpsink", f"host={host}", f"port={ports[3]}",
        "sync=false", "async=false",
    ]


def tshark_counts(pcap, ports):
    """Per-SSRC RTP and RTCP packet counts as tshark decodes the capture."""
    rows = tshark_fields(pcap, [(ports[0], "rtp"), (ports[2], "rtp"), (ports[1], "rtcp"),
                                (ports[3], "rtcp")], ["rtp.ssrc", "rtcp.senderssrc"])
    rtp, rtcp = collections.Counter(), collections.Counter()
    for row in rows:
        if row[0]:
            rtp[int(row[0], 16)] += 1
        elif len(row) > 1 and row[1]:
            # a compound packet lists its sender SSRC once per SR/RR; count the packet once
            rtcp[int(row[1].split(",")[0], 16)] += 1
    return rtp, rtcp


def packet_rows(pcap, ports):
    """(time, src port, dst port, rtp seq, rtp ts, rtcp types, length) of every frame sent
    to the test's ports (a capture's liveness probe goes elsewhere)."""
    rows = tshark_fields(
        pcap, [(ports[0], "rtp"), (ports[2], "rtp"), (ports[1], "rtcp"), (ports[3], "rtcp")],
        ["frame.time_epoch", "udp.srcport", "udp.dstport", "rtp.seq", "rtp.timestamp",
         "rtcp.pt", "udp.length"])
    return sorted(tuple(r) for r in rows if r[2] and int(r[2]) in ports)


@pytest.fixture(scope="module")
def real_capture(tmp_path_factory):
    """A 10 s VP8 + Opus rtpbin capture made once for the module."""
    from conftest import Capture
    tmp = tmp_path_factory.mktemp("capture")
    ports = free_udp_ports(4)
    pcap = str(tmp / "av.pcap")
    cap = Capture(pcap, f"udp and portrange {ports[0]}-{ports[3]}")
    run_sender(gst_vp8_opus_rtpbin(ports, 10), 10)
    cap.stop()
    return tmp, pcap, ports


def test_import_counts_equal_tsharks_per_ssrc(real_capture):
    tmp, pcap, ports = real_capture
    out = tmp / "rec-counts"
    report = json.loads(run_capstan("import-pcap", pcap, "--out", out, "--map", "96=VP8/90000",
                                    "--map", "111=opus/48000/2", "--json").stdout)
    rtp, rtcp = tshark_counts(pcap, ports)
    assert rtp[VIDEO_SSRC] > 250 and rtp[AUDIO_SSRC] > 400, rtp
    assert rtcp[VIDEO_SSRC] >= 1 and rtcp[AUDIO_SSRC] >= 1, rtcp
    ours = {t["ssrc"]: t for t in report["tracks"]}
    assert set(ours) == {VIDEO_SSRC, AUDIO_SSRC}
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        assert ours[ssrc]["rtp_packets"] == rtp[ssrc]
        assert ours[ssrc]["rtcp_packets"] == rtcp[ssrc]
    assert ours[VIDEO_SSRC]["codec"] == "vp8" and ours[VIDEO_SSRC]["kind"] == "video"
    assert ours[AUDIO_SSRC]["codec"] == "opus" and ours[AUDIO_SSRC]["kind"] == "audio"

    inspect = json.loads(run_capstan("inspect", out, "--json").stdout)
    by_ssrc = {t["ssrc"]: t for t in inspect["tracks"]}
    times = collections.defaultdict(list)
    for when, dport in tshark_fields(pcap, [(ports[0], "rtp"), (ports[2], "rtp"), (ports[1], "rtcp"),
                                            (ports[3], "rtcp")], ["frame.time_epoch", "udp.dstport"]):
        if dport and int(dport) in ports:
            times[VIDEO_SSRC if int(dport) in ports[:2] else AUDIO_SSRC].append(float(when))
    spans = {ssrc: max(v) - min(v) for ssrc, v in times.items()}
    srs = collections.Counter()
    for ssrcs, types in tshark_fields(pcap, [(ports[1], "rtcp"), (ports[3], "rtcp")],
                                      ["rtcp.senderssrc", "rtcp.pt"]):
        if ssrcs and "200" in types.split(","):
            srs[int(ssrcs.split(",")[0], 16)] += 1
    assert srs[VIDEO_SSRC] >= 1 and srs[AUDIO_SSRC] >= 1, srs
    for ssrc in (VIDEO_SSRC, AUDIO_SSRC):
        t = by_ssrc[ssrc]
        assert t["packets"] == rtp[ssrc]
        assert t["rtcp_packets"] == rtcp[ssrc]
        assert t["lost"] == 0 and t["duplicated"] == 0 and t["damaged_records"] == 0
        # arrival span of the track's RTP and RTCP, as the capture saw it (a loaded machine
        # can keep rtpbin sending RTCP for a while after the media ends)
        assert abs(t["duration_seconds"] - spans[ssrc]) < 0.002, (t["duration_seconds"], spans[ssrc])
        assert t["duration_seconds"] > 9.0
        q = t["quality"]   # the media pipeline's view: frames, sync
        assert q["incomplete_frames"] == 0 and q["freezes"] == 0 and q["rtcp_sync"] is True
        # every Sender Report is used (a sender silent for a while, say after its media
        # ended on a loaded machine, sends Receiver Reports instead: those are not counted)
        assert q["sender_reports"] == srs[ssrc] and abs(q["drift_ppm"]) < 1000
    # frames sent = distinct RTP timestamps of the video SSRC in the capture
    from rtpcount import udp_payloads
    import struct
    stamps = {struct.unpack(">I", p[4:8])[0] for _, port, p in udp_payloads(pcap)
              if port == ports[0] and len(p) >= 12 and struct.unpack(">I", p[8:12])[0] == VIDEO_SSRC}
    assert by_ssrc[VIDEO_SSRC]["quality"]["frames"] == len(stamps) > 280
    assert by_ssrc[VIDEO_SSRC]["quality"]["keyframes"] >= 5         # keyframe-max-dist=60
    assert by_ssrc[VIDEO_SSRC]["quality"]["first_keyframe_seconds"] < 0.5
    assert by_ssrc[AUDIO_SSRC]["quality"]["frames"] == rtp[AUDIO_SSRC]
    # the recording's files are there and say what was imported
    meta = json.loads((out / "metadata.json").read_text())
    tracks = [tr for p in meta["participants"] for tr in p["tracks"]]
    assert {tr["ssrc"] for tr in tracks} == {VIDEO_SSRC, AUDIO_SSRC}
    assert json.loads((out / "timeline.json").read_text())["events"][0]["type"] == "recording_started"
    assert json.loads((out / "policy.json").read_text())["features"]["recording"]["enabled"] is True


def test_export_round_trip_is_identical(real_capture):
    tmp, pcap, ports = real_capture
    first, second = tmp / "rt1", tmp / "rt2"
    maps = ["--map", "96=VP8/90000", "--map", "111=opus/48000/2"]
    run_capstan("import-pcap", pcap, "--out", first, *maps)
    run_capstan("export-pcap", first, "--out", tmp / "rt1.pcap")
    run_capstan("import-pcap", tmp / "rt1.pcap", "--out", second, *maps, "--recording", "av")
    run_capstan("export-pcap", second, "--out", tmp / "rt2.pcap")
    # import -> export -> import: the same packets at the same arrival times, byte for byte
    assert (tmp / "rt1.pcap").read_bytes() == (tmp / "rt2.pcap").read_bytes()
    a = json.loads(run_capstan("inspect", first, "--json").stdout)["tracks"]
    b = json.loads(run_capstan("inspect", second, "--json").stdout)["tracks"]
    for x, y in zip(a, b):
        for key in ("ssrc", "packets", "rtcp_packets", "bytes", "first_arrival", "last_arrival"):
            assert x[key] == y[key]
    # and the export carries what the original capture carried, as tshark reads both
    assert packet_rows(tmp / "rt1.pcap", ports) == packet_rows(pcap, ports)


def test_pcapng_and_ipv6_import_the_same(real_capture, tmp_path, capture):
    _, pcap, ports = real_capture
    ng = tmp_path / "av.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", pcap, str(ng)], check=True)
    a = json.loads(run_capstan("import-pcap", pcap, "--out", tmp_path / "a", "--json").stdout)
    b = json.loads(run_capstan("import-pcap", ng, "--out", tmp_path / "b", "--json").stdout)
    assert [(t["ssrc"], t["rtp_packets"], t["rtcp_packets"]) for t in a["tracks"]] == \
           [(t["ssrc"], t["rtp_packets"], t["rtcp_packets"]) for t in b["tracks"]]
    # without a map the dynamic payload types are imported as unknown, kind guessed
    kinds = {t["ssrc"]: (t["codec"], t["kind"]) for t in a["tracks"]}
    assert kinds[VIDEO_SSRC] == ("unknown", "video")
    assert kinds[AUDIO_SSRC] == ("unknown", "audio")

    import socket
    v6 = free_udp_ports(4, socket.AF_INET6)
    cap = capture(f"udp and portrange {v6[0]}-{v6[3]}", "v6.pcap")
    run_sender(gst_vp8_opus_rtpbin(v6, 2, host="::1"), 2)
    cap.stop()
    rep = json.loads(run_capstan("import-pcap", cap.path, "--out", tmp_path / "v6",
                                 "--map", "96=VP8/90000", "--map", "111=opus/48000/2",
                                 "--json").stdout)
    rtp, rtcp = tshark_counts(cap.path, v6)
    assert {t["ssrc"]: t["rtp_packets"] for t in rep["tracks"]} == dict(rtp)
    run_capstan("export-pcap", tmp_path / "v6", "--out", tmp_path / "v6-out.pcap")
    assert packet_rows(tmp_path / "v6-out.pcap", v6) == packet_rows(cap.path, v6)


def test_sdp_names_codecs_by_port_and_payload_type(tmp_path, capture):
    ports = free_udp_ports(4)
    cap = capture(f"udp and portrange {ports[0]}-{ports[3]}")
    sdp = tmp_path / "session.sdp"
    subprocess.run([
        "ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-t", "2", "-i",
        "testsrc2=size=320x240:rate=30", "-re", "-f", "lavfi", "-t", "2", "-i",
        "sine=frequency=440:sample_rate=48000",
        "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-f", "rtp", "-payload_type", "96", f"rtp://127.0.0.1:{ports[0]}",
        "-map", "1:a", "-c:a", "libopus", "-f", "rtp", "-payload_type", "97",
        f"rtp://127.0.0.1:{ports[2]}", "-sdp_file", str(sdp)], check=True, timeout=60)
    cap.stop()
    rep = json.loads(run_capstan("import-pcap", cap.path, "--out", tmp_path / "rec", "--sdp",
                                 sdp, "--json").stdout)
    codecs = sorted((t["codec"], t["kind"]) for t in rep["tracks"])
    assert codecs == [("h264", "video"), ("opus", "audio")]
    assert sum(t["rtcp_packets"] for t in rep["tracks"]) >= 2
    info = json.loads(run_capstan("inspect", tmp_path / "rec", "--json").stdout)
    assert all(t["lost"] == 0 for t in info["tracks"])
