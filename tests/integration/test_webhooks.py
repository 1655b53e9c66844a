"""Webhooks from the daemon: a receiver that fails its first three deliveries still gets
every event exactly once (acknowledged), in order, each signed with HMAC-SHA256 over the
body and carrying an event id."""
import hashlib
import hmac
import http.server
import json
import threading

from daemon import Daemon, wait_for

SECRET = "webhook-secret-for-tests"


class Receiver:
    def __init__(self, fail_first=3):
        self.requests = []      # (status we answered, headers, body)
        self.fail_first = fail_first
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.requests) < receiver.fail_first else 200
                receiver.requests.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def acked(self):
        return [(h, b) for status, h, b in self.requests if status == 200]

    def close(self):
        self.server.shutdown()


def test_failing_receiver_gets_every_event_signed(tmp_path):
    rx = Receiver(fail_first=3)
    d = Daemon(tmp_path / "data", ["--webhook", rx.url, "--webhook-secret", SECRET]).start()
    try:
        d.ok("PUT", "/rooms/hooked", {"room_name": "Hooked"})
        d.ok("POST", "/rooms/hooked/peers", {"peer_id": "ann", "display_name": "Ann"})
        d.ok("POST", "/rooms/hooked/producers", {"producer_id": "m", "peer_id": "ann", "kind": "audio",
                                                 "codec": "opus", "payload_type": 111, "ssrc": 9})
        rec = d.ok("POST", "/rooms/hooked/recordings", {"requester_id": "ann"})
        d.ok("POST", f"/recordings/{rec['recording_id']}/pause")
        d.ok("POST", f"/recordings/{rec['recording_id']}/resume")
        d.ok("POST", f"/recordings/{rec['recording_id']}/stop")
        d.ok("DELETE", "/rooms/hooked/peers/ann")
        d.ok("DELETE", "/rooms/hooked")
        expected = [("Room", "Started"), ("Peer", "Joined"), ("Track", "Started"), ("Record", "Started"),
                    ("Record", "Paused"), ("Record", "Resumed"), ("Record", "Stopped"),
                    ("Peer", "Left"), ("Room", "Closed")]
        assert wait_for(lambda: len(rx.acked()) >= len(expected), timeout=30)
        assert wait_for(lambda: d.metrics()["capstan_webhook_backlog"] == 0, timeout=10)
    finally:
        d.stop()
        rx.close()

    assert [s for s, _, _ in rx.requests[:3]] == [500, 500, 500]
    acked = rx.acked()
    ids = [h["X-Capstan-Event-Id"] for h, _ in acked]
    assert len(ids) == len(set(ids)) == len(expected), ids   # each event once
    seen = []
    for headers, body in acked:
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Capstan-Signature"] == sig
        assert headers["Content-Type"] == "application/json"
        event = json.loads(body)
        assert event["id"] == headers["X-Capstan-Event-Id"]
        assert event["node"] == 1 and isinstance(event["ts"], int)
        (kind, inner), = event["event"].items()
        assert inner["room"] == "hooked"
        (name, _), = inner["event"].items()
        seen.append((kind, name))
    assert seen == expected
    # the three failures were retries of the first event, not lost or reordered ones
    first_id = acked[0][0]["X-Capstan-Event-Id"]
    assert all(h["X-Capstan-Event-Id"] == first_id for _, h, _ in rx.requests[:3])
    record_started = json.loads(acked[3][1])["event"]["Record"]["event"]["Started"]
    assert record_started["path"] == f"rooms/hooked/{rec['recording_id']}"


def test_events_survive_a_restart_while_the_receiver_is_down(tmp_path):
    rx = Receiver(fail_first=10 ** 6)   # refuses everything for now
    d = Daemon(tmp_path / "data", ["--webhook", rx.url, "--webhook-secret", SECRET]).start()
    d.ok("PUT", "/rooms/later", {})
    d.ok("POST", "/rooms/later/peers", {"peer_id": "x"})
    assert wait_for(lambda: len(rx.requests) >= 1)
    assert d.metrics()["capstan_webhook_backlog"] == 2
    d.stop()
    rx.fail_first = 0
    d2 = Daemon(tmp_path / "data", ["--webhook", rx.url, "--webhook-secret", SECRET], ports=d.ports).start()
    try:
        assert wait_for(lambda: len(rx.acked()) == 2, timeout=90)
        assert wait_for(lambda: d2.metrics()["capstan_webhook_backlog"] == 0)
    finally:
        d2.stop()
        rx.close()
    names = [list(json.loads(b)["event"].values())[0]["event"] for _, b in rx.acked()]
    assert [list(n)[0] for n in names] == ["Started", "Joined"]
