#!/usr/bin/env python3
"""pgwire: a small PostgreSQL wire-protocol client for martgate's integration
tests (standard library only). Used as a module by inline test scripts and as
a command line tool:

  pgwire.py login --port P [--host H | --unix DIR] [--tls CA] [--sni NAME]
                  --user U --db D [--password-env VAR | --password-file F]
                  [--param k=v]... [--query SQL]... [--hold SECONDS]
      prints READY / ROW a|b / CMD tag / ERROR sqlstate message / CLOSED
      exit 0 ready (queries may have failed), 3 login refused, 4 closed, 5 other
  pgwire.py jwt --alg HS256|HS384|HS512|RS256|none [--key FILE] [--kid K]
                [--claims JSON] [--exp-in S] [--nbf-in S] [--iat-in S]
                [--header JSON] [--strip-key]
      prints a JWT (RS*: signed with `openssl dgst`; HS*: the key file's bytes
      are the secret, as is, or without trailing whitespace with --strip-key)
"""
import argparse, base64, json, os, socket, ssl, struct, subprocess, sys, time, hashlib, hmac

PROTO_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


class Closed(Exception):
    pass


class PGError(Exception):
    def __init__(self, fields):
        self.fields = fields
        super().__init__("%s %s" % (fields.get("C", "?"), fields.get("M", "")))

    @property
    def sqlstate(self):
        return self.fields.get("C", "")


def error_fields(payload):
    out = {}
    for part in payload.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return out


def cstr(s):
    return s.encode() + b"\0"


def msg(t, payload=b""):
    return t.encode() + struct.pack("!i", len(payload) + 4) + payload


def startup_packet(params, proto=PROTO_3):
    body = struct.pack("!i", proto)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def parse_row(payload):
    n = struct.unpack("!h", payload[:2])[0]
    pos, row = 2, []
    for _ in range(n):
        ln = struct.unpack("!i", payload[pos:pos + 4])[0]
        pos += 4
        if ln < 0:
            row.append(None)
        else:
            row.append(payload[pos:pos + ln].decode("utf-8", "replace"))
            pos += ln
    return row


class Conn:
    def __init__(self, host="127.0.0.1", port=5432, unix_dir=None, timeout=10.0, source=None):
        if unix_dir:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(os.path.join(unix_dir, ".s.PGSQL.%d" % port))
        else:
            # source: the local address to bind (127.0.0.2 ...: another client address)
            s = socket.create_connection((host, port), timeout=timeout,
                                         source_address=(source, 0) if source else None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(timeout)
        self.sock = s
        self.buf = b""
        self.params = {}
        self.pid = None
        self.key = None
        self.tls = False

    # -- bytes ---------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send, but a server that hangs up mid-way (after answering a message
        it refuses) is not an error here: returns False, read the answer next."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, ssl.SSLEOFError):
            raise Closed()
        except OSError as e:
            if isinstance(e, socket.timeout):
                raise
            raise Closed()
        if not data:
            raise Closed()
        self.buf += data

    def recv_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_msg(self):
        head = self.recv_exact(5)
        t, ln = chr(head[0]), struct.unpack("!i", head[1:])[0]
        if ln < 4 or ln > (1 << 30):
            raise ValueError("bad message length %d from server" % ln)
        return t, self.recv_exact(ln - 4)

    def settimeout(self, t):
        self.sock.settimeout(t)

    # -- handshake -----------------------------------------------------------
    def ssl_request(self, ca=None, sni="localhost", extra=b"", wrap=True):
        """Send SSLRequest (plus extra bytes in the same write); returns the
        server's one-byte answer, wrapping the socket in TLS on 'S'."""
        self.send(struct.pack("!ii", 8, SSL_REQUEST) + extra)
        r = self.recv_exact(1)
        if r == b"E" and wrap:
            # an error instead of an answer (e.g. too many clients), in plaintext
            ln = struct.unpack("!i", self.recv_exact(4))[0]
            if 4 <= ln <= 65536:
                raise PGError(error_fields(self.recv_exact(ln - 4)))
        if r == b"S" and wrap:
            self.starttls(ca, sni)
        return r

    def starttls(self, ca=None, sni="localhost"):
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        self.tls = True

    def startup(self, user, database, params=None, proto=PROTO_3):
        p = {"user": user, "database": database}
        p.update(params or {})
        self.send(startup_packet(p, proto))

    def finish_login(self, password=None):
        """Answer authentication and read up to ReadyForQuery. Raises PGError
        on ErrorResponse, Closed if the server hangs up."""
        while True:
            t, p = self.read_msg()
            if t == "R":
                code = struct.unpack("!i", p[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    if password is None:
                        raise RuntimeError("server asked for a password and none was given")
                    try:
                        self.send(msg("p", password.encode() + b"\0"))
                    except (OSError, ssl.SSLError):
                        pass    # the server may have answered and hung up: read on
                elif code == 10:
                    self._scram(p[4:], password)
                else:
                    raise RuntimeError("unsupported authentication request %d" % code)
            elif t == "S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "K":
                self.pid, self.key = struct.unpack("!ii", p)
            elif t == "Z":
                return
            elif t == "E":
                raise PGError(error_fields(p))
            elif t == "N":
                pass
            else:
                raise RuntimeError("unexpected message %r during login" % t)

    def _scram(self, mechs, password):
        if b"SCRAM-SHA-256" not in mechs.split(b"\0"):
            raise RuntimeError("no supported SASL mechanism")
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=,r=" + nonce
        first = ("n,," + first_bare).encode()
        self.send(msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
        t, p = self.read_msg()
        if t == "E":
            raise PGError(error_fields(p))
        server_first = p[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters, rnonce = base64.b64decode(attrs["s"]), int(attrs["i"]), attrs["r"]
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        final_wo = "c=biws,r=" + rnonce
        auth_msg = ",".join([first_bare, server_first, final_wo]).encode()
        sig = hmac.new(stored, auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send(msg("p", (final_wo + ",p=" + base64.b64encode(proof).decode()).encode()))
        t, p = self.read_msg()
        if t == "E":
            raise PGError(error_fields(p))

    def login(self, user, database, password=None, params=None, tls_ca=None, tls=True, sni="localhost"):
        if tls:
            r = self.ssl_request(tls_ca, sni)
            if r != b"S":
                raise RuntimeError("server refused TLS (%r)" % r)
        self.startup(user, database, params)
        self.finish_login(password)
        return self

    # -- queries -------------------------------------------------------------
    def until_ready(self):
        out = []
        while True:
            t, p = self.read_msg()
            out.append((t, p))
            if t == "Z":
                return out

    def query(self, sql):
        self.send(msg("Q", cstr(sql)))
        return self.until_ready()

    def wait_closed(self, seconds):
        """Read until the server closes the connection or `seconds` pass.
        Returns (closed, messages)."""
        deadline = time.time() + seconds
        out = []
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False, out
            self.sock.settimeout(left)
            try:
                out.append(self.read_msg())
            except Closed:
                return True, out
            except socket.timeout:
                return False, out
            except ValueError:
                return True, out

    def terminate(self):
        try:
            self.send(msg("X"))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def summarize(msgs):
    """Human-readable lines for a list of messages (rows, tags, errors)."""
    lines = []
    for t, p in msgs:
        if t == "D":
            lines.append("ROW " + "|".join("" if v is None else v for v in parse_row(p)))
        elif t == "C":
            lines.append("CMD " + p.rstrip(b"\0").decode())
        elif t == "E":
            f = error_fields(p)
            lines.append("ERROR %s %s" % (f.get("C", "?"), f.get("M", "")))
        elif t == "N":
            f = error_fields(p)
            lines.append("NOTICE %s %s" % (f.get("C", "?"), f.get("M", "")))
    return lines


def first_error(msgs):
    for t, p in msgs:
        if t == "E":
            return error_fields(p)
    return None


def send_cancel(host, port, pid, key, tls_ca=None, timeout=5.0):
    """CancelRequest on a fresh connection (plaintext, as libpq and pgjdbc
    send it, or inside TLS when tls_ca is given). Waits for the server to close."""
    c = Conn(host, port, timeout=timeout)
    if tls_ca:
        c.ssl_request(tls_ca)
    c.send(struct.pack("!iiii", 16, CANCEL_REQUEST, pid, key))
    closed, _ = c.wait_closed(timeout)
    c.close()
    return closed


# -- JWT ----------------------------------------------------------------------
def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(alg, key_file=None, claims=None, header_extra=None, kid=None, strip_key=False):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    header.update(header_extra or {})
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims or {}, separators=(",", ":")).encode()))
    if alg == "none":
        return signing_input + "."
    if alg.startswith("HS"):
        with open(key_file, "rb") as f:
            secret = f.read()
        if strip_key:
            secret = secret.rstrip()
        h = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[alg]
        sig = hmac.new(secret, signing_input.encode(), h).digest()
    elif alg.startswith("RS"):
        h = {"RS256": "-sha256", "RS384": "-sha384", "RS512": "-sha512"}[alg]
        sig = subprocess.run(["openssl", "dgst", h, "-sign", key_file], input=signing_input.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
    else:
        raise SystemExit("unsupported alg " + alg)
    return signing_input + "." + b64url(sig)


# -- the test environment (exported by tests/lib/harness.sh) -------------------
def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        raise SystemExit("pgwire: environment variable %s is not set" % name)
    return v


def target_login(db, params=None, timeout=10.0, user=None, password=None):
    """A session through the target (martgate, or the warehouse with
    MG_TARGET=direct) as the tests' client would open it: TLS verified against
    the dev CA; token (or the service password) as the password."""
    direct = env("MG_TARGET", "martgate") == "direct"
    if user is None:
        user = env("MG_SVC_USER") if direct else env("MG_USER")
    if password is None:
        password = env("MG_SVC_PASS") if direct else env("MG_TOKEN")
    c = Conn("127.0.0.1", int(env("MG_PORT")), timeout=timeout)
    return c.login(user, db, password, params, tls_ca=env("MG_CA"))


def direct_login(db, params=None, timeout=10.0):
    """A session on the warehouse itself over its unix socket (trust), as the
    service role: the reference answer."""
    c = Conn(port=int(env("MG_PG_PORT")), unix_dir=env("MG_PG_SOCK"), timeout=timeout)
    c.startup(env("MG_SVC_USER"), db, params)
    c.finish_login(None)
    return c


class Report:
    """PASS/FAIL lines that tests/lib/harness.sh turns into ok/not ok."""
    def __init__(self):
        self.failed = 0

    def check(self, name, cond, why=""):
        if cond:
            print("PASS " + name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s | %s" % (name, str(why).replace("\n", " / ")[:600]), flush=True)
        return cond

    def note(self, text):
        print(str(text), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("login")
    lg.add_argument("--host", default="127.0.0.1")
    lg.add_argument("--port", type=int, required=True)
    lg.add_argument("--unix")
    lg.add_argument("--tls", metavar="CA", help="SSLRequest and verify against CA")
    lg.add_argument("--tls-noverify", action="store_true")
    lg.add_argument("--sni", default="localhost")
    lg.add_argument("--user", required=True)
    lg.add_argument("--db", required=True)
    lg.add_argument("--password-env")
    lg.add_argument("--password-file")
    lg.add_argument("--param", action="append", default=[])
    lg.add_argument("--query", action="append", default=[])
    lg.add_argument("--hold", type=float, default=0)
    lg.add_argument("--timeout", type=float, default=10)
    jw = sub.add_parser("jwt")
    jw.add_argument("--alg", required=True)
    jw.add_argument("--key")
    jw.add_argument("--kid")
    jw.add_argument("--claims", default="{}")
    jw.add_argument("--header", default="{}")
    jw.add_argument("--exp-in", type=int)
    jw.add_argument("--nbf-in", type=int)
    jw.add_argument("--iat-in", type=int)
    jw.add_argument("--strip-key", action="store_true")
    a = ap.parse_args()

    if a.cmd == "jwt":
        claims = json.loads(a.claims)
        now = int(time.time())
        for name, val in (("exp", a.exp_in), ("nbf", a.nbf_in), ("iat", a.iat_in)):
            if val is not None:
                claims[name] = now + val
        print(make_jwt(a.alg, a.key, claims, json.loads(a.header), a.kid, a.strip_key))
        return 0

    password = None
    if a.password_env:
        password = os.environ.get(a.password_env, "")
    elif a.password_file:
        with open(a.password_file) as f:
            password = f.read()
    params = dict(p.split("=", 1) for p in a.param)
    try:
        c = Conn(a.host, a.port, a.unix, timeout=a.timeout)
        if a.tls or a.tls_noverify:
            r = c.ssl_request(None if a.tls_noverify else a.tls)
            if r != b"S":
                print("NOTLS %r" % r)
                return 5
        c.startup(a.user, a.db, params)
        c.finish_login(password)
    except PGError as e:
        print("ERROR %s %s" % (e.sqlstate, e.fields.get("M", "")))
        return 3
    except Closed:
        print("CLOSED")
        return 4
    except (OSError, RuntimeError, ValueError) as e:
        print("FAILED %s" % e)
        return 5
    print("READY")
    try:
        for q in a.query:
            for line in summarize(c.query(q)):
                print(line)
        if a.hold:
            time.sleep(a.hold)
        c.terminate()
    except Closed:
        print("CLOSED")
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
