"""Every subcommand answers --help, and bad input gets a clear message and a non-zero
exit without touching what already exists."""
import json
import os
import struct

import pytest

from conftest import run_capstan

COMMANDS = ["import-pcap", "export-pcap", "inspect"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_exits_zero(cmd):
    proc = run_capstan(cmd, "--help")
    assert proc.stdout.startswith(f"usage: capstan {cmd}")


def test_top_level_help_and_unknown_command():
    assert "import-pcap" in run_capstan("--help").stdout
    proc = run_capstan("frobnicate", check=False)
    assert proc.returncode == 2 and "unknown command 'frobnicate'" in proc.stderr


def write_pcap(path, frames, linktype=1):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)


def udp_frame(payload, sport=4000, dport=5000):
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def rtp(seq, ssrc=0x11223344, pt=96, payload=b"abcd"):
    return struct.pack(">BBHII", 0x80, pt, seq, seq * 3000, ssrc) + payload


@pytest.mark.parametrize("args,code,message", [
    (["import-pcap"], 2, "expected exactly one capture FILE"),
    (["import-pcap", "x.pcap"], 2, "--out DIR is required"),
    (["import-pcap", "x.pcap", "--out", "o", "--map", "96=VP8"], 2, "expected PT=CODEC/CLOCK"),
    (["import-pcap", "x.pcap", "--out", "o", "--map", "200=VP8/90000"], 2, "PT 0..127"),
    (["import-pcap", "x.pcap", "--out", "o", "--bogus"], 2, "unknown or incomplete option"),
    (["import-pcap", "x.pcap", "--out", "o", "--chunk-mb", "zero"], 2, "--chunk-mb takes"),
    (["export-pcap", "dir"], 2, "--out FILE is required"),
    (["inspect"], 2, "expected exactly one recording DIR"),
])
def test_usage_errors(args, code, message):
    proc = run_capstan(*args, check=False)
    assert proc.returncode == code
    assert message in proc.stderr
    assert proc.stderr.startswith(f"capstan {args[0]}: ")


def test_missing_and_foreign_inputs_fail_clearly(tmp_path):
    proc = run_capstan("import-pcap", tmp_path / "nope.pcap", "--out", tmp_path / "o", check=False)
    assert proc.returncode == 1 and "not a readable pcap" in proc.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a capture\n")
    proc = run_capstan("import-pcap", text, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 1 and "not a readable pcap" in proc.stderr
    proc = run_capstan("export-pcap", tmp_path, "--out", tmp_path / "x.pcap", check=False)
    assert proc.returncode == 1 and "not a recording folder" in proc.stderr
    proc = run_capstan("inspect", tmp_path / "absent", check=False)
    assert proc.returncode == 1 and "no such folder" in proc.stderr
    proc = run_capstan("inspect", tmp_path, check=False)
    assert proc.returncode == 1 and "no chunks" in proc.stderr
    sdp = tmp_path / "bad.sdp"
    sdp.write_text("this is not sdp\n")
    pcap = tmp_path / "one.pcap"
    write_pcap(pcap, [udp_frame(rtp(1))])
    proc = run_capstan("import-pcap", pcap, "--out", tmp_path / "o", "--sdp", sdp, check=False)
    assert proc.returncode == 1 and "not 'x=value'" in proc.stderr


def test_capture_without_rtp_is_refused(tmp_path):
    pcap = tmp_path / "dns.pcap"
    write_pcap(pcap, [udp_frame(b"\x12\x34\x01\x00\x00\x01", 5353, 53)] * 3)
    proc = run_capstan("import-pcap", pcap, "--out", tmp_path / "o", check=False)
    assert proc.returncode == 1 and "no RTP stream found in 3 frames" in proc.stderr


def test_import_never_overwrites_a_recording(tmp_path):
    pcap = tmp_path / "a.pcap"
    write_pcap(pcap, [udp_frame(rtp(i)) for i in range(10)])
    out = tmp_path / "rec"
    run_capstan("import-pcap", pcap, "--out", out, "--map", "96=VP8/90000")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = run_capstan("import-pcap", pcap, "--out", out, check=False)
    assert proc.returncode == 1 and "already holds a recording" in proc.stderr
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_garbage_frames_are_counted_not_fatal(tmp_path):
    frames = [udp_frame(rtp(i)) for i in range(20)]
    frames += [
        udp_frame(b"\x40" + rtp(1)[1:]),                   # version 1
        udp_frame(rtp(2)[:8]),                              # truncated header
        udp_frame(bytes([0x8F]) + rtp(3)[1:]),              # 15 CSRCs past the end
        udp_frame(bytes([0xA0]) + rtp(4)[1:-1] + b"\xff"),  # padding longer than payload
        udp_frame(b"\x81\xc8\x00\x20" + b"\0" * 8),         # RTCP SR whose length lies
        b"\0" * 12 + b"\x08\x06" + b"\0" * 28,              # ARP
        udp_frame(rtp(5))[:30],                             # frame cut inside the IP header
    ]
    pcap = tmp_path / "mixed.pcap"
    write_pcap(pcap, frames)
    rep = json.loads(run_capstan("import-pcap", pcap, "--out", tmp_path / "o", "--json").stdout)
    assert rep["rtp_packets"] == 20
    d = rep["dropped"]
    assert d["not_rtp"] == 1 and d["rtp_malformed"] == 3 and d["rtcp_malformed"] == 1
    assert d["not_ip"] == 1 and d["truncated"] == 1
    assert rep["frames"] == 27


def test_inspect_counts_loss_duplicates_and_reordering(tmp_path):
    seqs = [0, 1, 2, 4, 3, 5, 5, 6, 9, 10, 11, 12]  # 7 and 8 lost, 3 reordered, 5 duplicated
    pcap = tmp_path / "impaired.pcap"
    write_pcap(pcap, [udp_frame(rtp(s)) for s in seqs])
    run_capstan("import-pcap", pcap, "--out", tmp_path / "o", "--map", "96=VP8/90000")
    t = json.loads(run_capstan("inspect", tmp_path / "o", "--json").stdout)["tracks"][0]
    assert (t["packets"], t["lost"], t["duplicated"], t["reordered"]) == (12, 2, 1, 1)
