"""A deterministic impairment relay for tests: UDP in on one port, out to another, with
seeded loss, reordering, duplication and jitter applied to RTP (RTCP passes untouched),
and a record of exactly what it did per SSRC."""
import heapq
import random
import socket
import struct
import threading
import time


class Relay:
    def __init__(self, target_port, seed=1, loss=0.05, reorder=0.03, duplicate=0.02,
                 jitter_ms=15, spare_first=20):
        self.target = ("127.0.0.1", target_port)
        self.rng = random.Random(seed)
        self.loss, self.reorder, self.duplicate, self.jitter = loss, reorder, duplicate, jitter_ms / 1000
        self.spare_first = spare_first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.seen = {}          # ssrc -> packets seen
        self.dropped = {}       # ssrc -> set of sequence numbers dropped
        self.duplicated = {}    # ssrc -> count
        self.reordered = {}     # ssrc -> count
        self.forwarded = {}     # ssrc -> list of sequence numbers sent on
        self.queue = []         # (due time, order, datagram)
        self.order = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def schedule(self, due, data):
        self.order += 1
        heapq.heappush(self.queue, (due, self.order, data))

    def handle(self, data):
        now = time.time()
        if len(data) < 12 or data[0] >> 6 != 2 or 192 <= data[1] <= 223:
            self.schedule(now, data)            # RTCP and anything else: untouched
            return
        seq, ssrc = struct.unpack(">H", data[2:4])[0], struct.unpack(">I", data[8:12])[0]
        n = self.seen[ssrc] = self.seen.get(ssrc, 0) + 1
        for table in (self.dropped, self.duplicated, self.reordered, self.forwarded):
            table.setdefault(ssrc, set() if table is self.dropped else ([] if table is self.forwarded else 0))
        if n > self.spare_first:
            if self.rng.random() < self.loss:
                self.dropped[ssrc].add(seq)
                return
            if self.rng.random() < self.reorder:
                self.reordered[ssrc] += 1
                self.schedule(now + 0.040, data)   # held back behind the next packets
                self.forwarded[ssrc].append(seq)
                return
            if self.rng.random() < self.duplicate:
                self.duplicated[ssrc] += 1
                self.schedule(now + self.rng.random() * self.jitter, data)
        self.schedule(now + self.rng.random() * self.jitter, data)
        self.forwarded[ssrc].append(seq)

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
                self.handle(data)
            except socket.timeout:
                pass
            now = time.time()
            while self.queue and self.queue[0][0] <= now:
                _, _, data = heapq.heappop(self.queue)
                self.out.sendto(data, self.target)

    def stop(self):
        time.sleep(0.2)
        self.running = False
        self.thread.join()
        for _, _, data in sorted(self.queue):
            self.out.sendto(data, self.target)
        self.sock.close()
        self.out.close()

    def expected_lost(self, ssrc):
        """Dropped sequence numbers a receiver can know were lost: inside the range it got."""
        got = self.forwarded.get(ssrc, [])
        if not got:
            return 0
        # extended order of what was forwarded: the relay sees packets in send order
        lo, hi = got[0], got[-1]
        if hi < lo:
            hi += 65536
        return sum(1 for s in self.dropped.get(ssrc, ()) if lo < (s if s >= lo else s + 65536) < hi)
