"""A real S3-compatible server for tests: s3rver (npm, node_modules/.bin/s3rver) on a free
loopback port with its own folder, behind a small proxy that checks every request's AWS
Signature Version 4 (header-signed and presigned), because s3rver itself does not: a
request signed wrongly gets 403 SignatureDoesNotMatch here, as it would from AWS or MinIO.
The proxy's signer is independent of capstan's (Python's hmac/hashlib) and is itself
checked against AWS's published example vectors (test_s3.py).

stop() takes the whole endpoint down (connections are refused); start() brings it back on
the same ports with the same folder, so objects survive an outage."""
import base64
import calendar
import hashlib
import hmac
import http.client
import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S3RVER = os.path.join(ROOT, "node_modules", ".bin", "s3rver")
ACCESS_KEY = "S3RVER"      # s3rver's built-in account
SECRET_KEY = "S3RVER"
CLOCK_SKEW_S = 900          # what AWS tolerates between the signer's clock and its own


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- SigV4 verification (AWS Signature Version 4 for S3) ----

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(secret, amz_date, region, service, canonical_request):
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), amz_date[:8]), region), service),
                "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_uri(raw_path):
    # S3 encodes the decoded key once: unreserved characters and '/' stay as they are.
    return urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/")


def canonical_query(raw_query, drop=()):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = urllib.parse.unquote(name), urllib.parse.unquote(value)
        if name in drop:
            continue
        pairs.append((urllib.parse.quote(name, safe=""), urllib.parse.quote(value, safe="")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _header_values(headers, name):
    values = [v for k, v in headers if k.lower() == name]
    return ",".join(" ".join(v.split()) for v in values) if values else None


def _amz_time(amz_date):
    return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))


class SignatureError(Exception):
    pass


def verify(method, raw_target, headers, body, secrets, now=None):
    """Checks one request's SigV4 signature; raises SignatureError with the reason.
    headers: list of (name, value). Returns "header", "query" or "anonymous"."""
    now = time.time() if now is None else now
    raw_path, _, raw_query = raw_target.partition("?")
    query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
    auth = _header_values(headers, "authorization")
    if auth:
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                         r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})", auth)
        if not m:
            raise SignatureError(f"malformed Authorization: {auth!r}")
        key, date8, region, service, signed, given = m.groups()
        amz_date = _header_values(headers, "x-amz-date") or ""
        payload = _header_values(headers, "x-amz-content-sha256")
        if payload is None:
            raise SignatureError("no x-amz-content-sha256 header")
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            raise SignatureError("x-amz-content-sha256 is not the SHA-256 of the body")
        signed_list = signed.split(";")
        if "host" not in signed_list:
            raise SignatureError("host is not signed")
        for name, _ in headers:
            if name.lower().startswith("x-amz-") and name.lower() not in signed_list:
                raise SignatureError(f"{name} is sent but not signed")
        canon_headers = ""
        for name in signed_list:
            value = _header_values(headers, name)
            if value is None:
                raise SignatureError(f"signed header {name} is missing")
            canon_headers += f"{name}:{value}\n"
        canon_q = canonical_query(raw_query)
        kind = "header"
    elif "X-Amz-Signature" in query:
        try:
            key, date8, region, service, terminator = query["X-Amz-Credential"].split("/")
            amz_date = query["X-Amz-Date"]
            expires = int(query["X-Amz-Expires"])
            signed_list = query["X-Amz-SignedHeaders"].split(";")
            given = query["X-Amz-Signature"]
        except (KeyError, ValueError) as err:
            raise SignatureError(f"incomplete presigned query: {err}")
        if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or terminator != "aws4_request":
            raise SignatureError("not an AWS4-HMAC-SHA256 presigned URL")
        if not 1 <= expires <= 604800:
            raise SignatureError("X-Amz-Expires out of range")
        if now > _amz_time(amz_date) + expires:
            raise SignatureError("presigned URL expired")
        canon_headers = ""
        for name in signed_list:
            value = _header_values(headers, name)
            if value is None:
                raise SignatureError(f"signed header {name} is missing")
            canon_headers += f"{name}:{value}\n"
        payload = "UNSIGNED-PAYLOAD"
        canon_q = canonical_query(raw_query, drop=("X-Amz-Signature",))
        signed = ";".join(signed_list)
        kind = "query"
    else:
        return "anonymous"
    if amz_date[:8] != date8:
        raise SignatureError("the credential's date is not the request's date")
    if kind == "header" and abs(now - _amz_time(amz_date)) > CLOCK_SKEW_S:
        raise SignatureError("request time too far from now")
    if key not in secrets:
        raise SignatureError(f"unknown access key {key}")
    canonical = "\n".join([method, canonical_uri(raw_path), canon_q, canon_headers, signed, payload])
    want = signature(secrets[key], amz_date, region, service, canonical)
    if not hmac.compare_digest(want, given):
        raise SignatureError(f"signature mismatch; canonical request was:\n{canonical}")
    return kind


# ---- the proxy ----

class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler(owner):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _any(self):
            body = self._read_body()
            refuse = owner.refuse
            if refuse and refuse(self.command, self.path):
                self._reply(503, b"<Error><Code>SlowDown</Code><Message>refused by the test</Message></Error>")
                return
            headers = list(self.headers.items())
            try:
                kind = verify(self.command, self.path, headers, body, {ACCESS_KEY: SECRET_KEY})
            except SignatureError as err:
                owner.rejected.append(f"{self.command} {self.path}: {err}")
                xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
                       f"<Message>{err}</Message></Error>").encode()
                self._reply(403, xml, [("Content-Type", "application/xml")])
                return
            md5 = self.headers.get("Content-MD5")
            if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
                owner.rejected.append(f"{self.command} {self.path}: Content-MD5 mismatch")
                self._reply(400, b"<Error><Code>BadDigest</Code><Message>Content-MD5</Message></Error>")
                return
            owner.counts[kind] = owner.counts.get(kind, 0) + 1
            owner.requests.append((self.command, self.path.split("?")[0], self.path.partition("?")[2]))
            conn = http.client.HTTPConnection("127.0.0.1", owner.backend_port, timeout=60)
            try:
                send = {k: v for k, v in headers if k.lower() not in ("connection", "transfer-encoding",
                                                                      "content-length", "expect")}
                send["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=send)
                resp = conn.getresponse()
                data = resp.read()
                out = [(k, v) for k, v in resp.getheaders()
                       if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                            "keep-alive", "date", "server")]
            except OSError as err:
                self._reply(503, f"<Error><Code>ServiceUnavailable</Code><Message>{err}</Message></Error>".encode())
                return
            finally:
                conn.close()
            self.send_response(resp.status)
            for k, v in out:
                self.send_header(k, v)
            if self.command == "HEAD":
                self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
                self.end_headers()
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    return Handler


def copy_objects(objects, dest):
    """Objects ({key: s3rver's file of it}, from S3Server.objects) as a local folder: an
    independent reading, not capstan's download. Returns dest."""
    for key, path in objects.items():
        os.makedirs(os.path.dirname(os.path.join(dest, key)), exist_ok=True)
        shutil.copyfile(path, os.path.join(dest, key))
    return dest


class S3Server:
    def __init__(self, root, bucket="capstan-test"):
        self.root = str(root)
        self.bucket = bucket
        self.port = free_tcp_port()            # what clients use: the verifying proxy
        self.backend_port = free_tcp_port()    # s3rver itself
        self.proc = None
        self.proxy = None
        self.rejected = []                     # requests whose signature did not verify
        self.counts = {}                       # verified requests by kind: header, query
        self.requests = []                     # (method, path, query) that reached s3rver
        self.refuse = None                     # (method, path) -> True: answer 503 (a test's outage)
        os.makedirs(os.path.join(self.root, "s3rver"), exist_ok=True)
        self.log_path = os.path.join(self.root, "s3rver.log")

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, prefix="", **params):
        """A capstan storage URL for this server (the bucket is made on first open)."""
        q = {"endpoint": self.endpoint, "access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
             "create_bucket": "1", **{k: str(v) for k, v in params.items()}}
        path = f"/{prefix}" if prefix else ""
        return f"s3://{self.bucket}{path}?" + urllib.parse.urlencode(q)

    def object_path(self, key):
        """Where s3rver keeps an object's bytes on disk."""
        return os.path.join(self.root, "s3rver", self.bucket, key + "._S3rver_object")

    def objects(self, prefix):
        """{key below prefix: path of the object's bytes}, read from s3rver's own folder
        (an independent reading, not capstan's)."""
        root = os.path.join(self.root, "s3rver", self.bucket, prefix)
        found = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith("._S3rver_object"):
                    full = os.path.join(dirpath, name)
                    found[os.path.relpath(full, root)[:-len("._S3rver_object")]] = full
        return found

    def start(self):
        assert os.access(S3RVER, os.X_OK), "s3rver missing: run `npm ci` (scripts/setup does)"
        self.log = open(self.log_path, "a")
        # s3rver makes listing continuation tokens with DES, which Node's OpenSSL 3 keeps in
        # its legacy provider: without it every paged listing answers 500.
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen([S3RVER, "-d", os.path.join(self.root, "s3rver"), "-a", "127.0.0.1",
                                      "-p", str(self.backend_port), "--no-vhost-buckets"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.backend_port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"s3rver exited: {open(self.log_path).read()[-2000:]}")
                time.sleep(0.1)
        else:
            raise RuntimeError("s3rver did not start listening")
        self.proxy = _Proxy(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.proxy:
            self.proxy.shutdown()
            self.proxy.server_close()
            self.proxy = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def get(self, url):
        """GET a (presigned) URL with plain urllib: (status, bytes)."""
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def cleanup(self):
        self.stop()
        shutil.rmtree(os.path.join(self.root, "s3rver"), ignore_errors=True)
