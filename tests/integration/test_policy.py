"""The room policy of the reference note, through the API: CHECK 1 (enabled), CHECK 2
(who_can_record for every requester role), CHECK 3 (auto_record), CHECK 4 (media
filters, also changed mid-session), CHECK 5 (screenshare detection)."""
import os
import socket
import struct

import pytest

from daemon import Daemon, VIEWER_KEY, wait_for


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("policy") / "data").start()
    d.module_scoped = True
    yield d
    d.stop()


def policy(**recording):
    rec = {"enabled": True}
    rec.update(recording)
    return {"features": {"recording": rec},
            "roles": {"host_id": "host", "co_host_ids": ["cohost"], "panelist_ids": ["panelist"]}}


def room(d, name, pol):
    d.ok("PUT", f"/rooms/{name}", {"room_name": name, "host_id": "host", "policy": pol})
    for peer in ("host", "cohost", "panelist", "attendee"):
        d.ok("POST", f"/rooms/{name}/peers", {"peer_id": peer})


ALLOWED = {
    "host": {"host"},
    "co_host": {"host", "cohost"},
    "panelist": {"host", "cohost", "panelist"},
    "all": {"host", "cohost", "panelist", "attendee"},
}


@pytest.mark.parametrize("who", ["host", "co_host", "panelist", "all"])
@pytest.mark.parametrize("requester", ["host", "cohost", "panelist", "attendee"])
def test_who_can_record(daemon, who, requester):
    name = f"who-{who}-{requester}"
    room(daemon, name, policy(who_can_record=who))
    status, reply = daemon.call("POST", f"/rooms/{name}/recordings", {"requester_id": requester})
    if requester in ALLOWED[who]:
        assert status == 201, reply
        assert reply["state"] == "recording"
    else:
        assert status == 403
        assert reply["error"]["code"] == 5002
        assert reply["error"]["message"] == "Not authorized to record"


def test_roles_also_come_from_peer_flags(daemon):
    daemon.ok("PUT", "/rooms/flags", {"policy": {"features": {"recording": {"enabled": True,
                                                                           "who_can_record": "co_host"}}}})
    daemon.ok("POST", "/rooms/flags/peers", {"peer_id": "dana", "is_co_host": True})
    daemon.ok("POST", "/rooms/flags/peers", {"peer_id": "eve"})
    assert daemon.call("POST", "/rooms/flags/recordings", {"requester_id": "eve"})[0] == 403
    assert daemon.call("POST", "/rooms/flags/recordings", {"requester_id": "dana"})[0] == 201


def test_recording_disabled(daemon):
    room(daemon, "off", policy(enabled=False))
    status, reply = daemon.call("POST", "/rooms/off/recordings", {"requester_id": "host"})
    assert status == 403 and reply["error"]["code"] == 5001
    assert reply["error"]["message"] == "Recording disabled for this room"
    # a policy without "enabled" is disabled too (the reference's rule)
    daemon.ok("PUT", "/rooms/unset", {"policy": {"features": {"recording": {"who_can_record": "all"}}}})
    assert daemon.call("POST", "/rooms/unset/recordings", {"requester_id": "x"})[1]["error"]["code"] == 5001


def produce(d, name, pid, peer, kind, ssrc, **extra):
    body = {"producer_id": pid, "peer_id": peer, "kind": kind, "ssrc": ssrc,
            "codec": "opus" if kind == "audio" else "vp8", "payload_type": 111 if kind == "audio" else 96}
    body.update(extra)
    return d.ok("POST", f"/rooms/{name}/producers", body)


def send(port, ssrc, n=20, pt=96):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for seq in range(n):
        s.sendto(struct.pack(">BBHII", 0x80, pt, seq, seq * 960, ssrc) + b"x" * 100, ("127.0.0.1", port))
    s.close()


def test_audio_only_policy_records_no_video(daemon):
    room(daemon, "audio-only", policy(record_video=False))
    produce(daemon, "audio-only", "cam", "host", "video", 501)
    produce(daemon, "audio-only", "mic", "host", "audio", 502)
    rec = daemon.ok("POST", "/rooms/audio-only/recordings", {"requester_id": "host"})
    assert [t["track_id"] for t in rec["tracks"]] == ["host-audio"]
    port = rec["rtp"]["udp_port"]
    send(port, 501)
    send(port, 502, pt=111)
    rid = rec["recording_id"]
    assert wait_for(lambda: daemon.ok("GET", f"/recordings/{rid}")["packets"] == 20)
    final = daemon.ok("POST", f"/recordings/{rid}/stop")
    assert [(t["kind"], t["packets"]) for t in final["tracks"]] == [("audio", 20)]
    tracks = os.listdir(os.path.join(daemon.recording_dir("audio-only", rid), "tracks"))
    assert tracks == ["host-audio"]


@pytest.mark.parametrize("how", ["flag", "app_data", "peer_prefix"])
def test_record_screenshare_false_skips_the_share(daemon, how):
    name = f"noshare-{how}"
    room(daemon, name, policy(record_screenshare=False))
    produce(daemon, name, "cam", "host", "video", 601)
    extra = {"flag": {"is_screenshare": True}, "app_data": {"app_data": {"share": True}},
             "peer_prefix": {}}[how]
    peer = "sharescreen_host" if how == "peer_prefix" else "host"
    produce(daemon, name, "share", peer, "video", 602, **extra)
    rec = daemon.ok("POST", f"/rooms/{name}/recordings", {"requester_id": "host"})
    assert [t["track_id"] for t in rec["tracks"]] == ["host-video"]
    # with screenshare allowed the same producer records as the peer's screen
    name2 = f"share-{how}"
    room(daemon, name2, policy())
    produce(daemon, name2, "share", peer, "video", 603, **extra)
    rec2 = daemon.ok("POST", f"/rooms/{name2}/recordings", {"requester_id": "host"})
    assert [(t["track_id"], t["kind"]) for t in rec2["tracks"]] == [("host-screen", "screen")]


def test_auto_record_starts_on_the_first_producer(daemon):
    room(daemon, "auto", policy(auto_record=True, who_can_record="host"))
    assert daemon.ok("GET", "/recordings?room_id=auto")["recordings"] == []
    reply = produce(daemon, "auto", "mic", "attendee", "audio", 701)
    assert reply["recorded"] is True
    recs = daemon.ok("GET", "/recordings?room_id=auto", key=VIEWER_KEY)["recordings"]
    assert len(recs) == 1 and recs[0]["state"] == "recording"
    assert recs[0]["requester_id"] == "auto_record"
    assert [t["track_id"] for t in recs[0]["tracks"]] == ["attendee-audio"]
    # the second producer joins that recording rather than starting another
    produce(daemon, "auto", "cam", "attendee", "video", 702)
    recs = daemon.ok("GET", "/recordings?room_id=auto")["recordings"]
    assert len(recs) == 1 and len(recs[0]["tracks"]) == 2
    # auto_record off: nothing starts by itself
    room(daemon, "manual", policy(auto_record=False))
    assert produce(daemon, "manual", "mic", "host", "audio", 703)["recorded"] is False
    assert daemon.ok("GET", "/recordings?room_id=manual")["recordings"] == []


def test_policy_update_reaches_live_tracks(daemon):
    room(daemon, "live", policy())
    produce(daemon, "live", "cam", "host", "video", 801)
    produce(daemon, "live", "mic", "host", "audio", 802)
    rec = daemon.ok("POST", "/rooms/live/recordings", {"requester_id": "host"})
    rid, port = rec["recording_id"], rec["rtp"]["udp_port"]
    daemon.ok("PUT", "/rooms/live", {"policy": policy(record_video=False)})
    states = {t["track_id"]: t["state"] for t in daemon.ok("GET", f"/recordings/{rid}")["tracks"]}
    assert states == {"host-video": "paused", "host-audio": "recording"}
    send(port, 801)
    send(port, 802, pt=111)
    assert wait_for(lambda: daemon.ok("GET", f"/recordings/{rid}")["packets"] == 20)
    counts = {t["track_id"]: t["packets"] for t in daemon.ok("GET", f"/recordings/{rid}")["tracks"]}
    assert counts == {"host-video": 0, "host-audio": 20}
    daemon.ok("PUT", "/rooms/live", {"policy": policy(record_video=True)})
    send(port, 801)
    assert wait_for(lambda: daemon.ok("GET", f"/recordings/{rid}")["packets"] == 40)
    # turning recording off stops it
    daemon.ok("PUT", "/rooms/live", {"policy": policy(enabled=False)})
    final = daemon.ok("GET", f"/recordings/{rid}")
    assert final["state"] == "stopped" and final["stop_reason"] == "policy_disabled"


def test_bad_policies_are_refused(daemon):
    for bad in ({"features": {"recording": {"who_can_record": "everyone"}}},
                {"features": {"recording": {"enabled": "yes"}}},
                {"roles": {"co_host_ids": "alice"}},
                "not an object"):
        status, reply = daemon.call("PUT", "/rooms/badpolicy", {"policy": bad})
        assert status == 400 and reply["error"]["code"] == 5003, bad
