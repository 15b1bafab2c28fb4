"""audit_report_cdp: renders `martgate audit report --html` in headless Chromium
over the DevTools protocol (--remote-debugging-pipe: no port, no network) for
tests/integration/t_audit_report.sh.

usage: audit_report_cdp.py CHROMIUM PAGE.html SUMMARY.json SCREENSHOT.png

Prints one "ok NAME" / "not ok NAME: WHY" line per check:
- the page loads with no console message, no exception, no log entry;
- the only request is the file itself (nothing fetched);
- no <script> element; the `<script>` of an audit query shows as text;
- every data-k number in the rendered DOM equals the same key of the
  --summary --json object, and every number of those sections is on the page;
- a screenshot (screen, then print media) is written.
"""
import base64
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time


class Cdp:
    def __init__(self, chromium, profile):
        r1, w1 = os.pipe()   # us -> chromium (its fd 3)
        r2, w2 = os.pipe()   # chromium -> us (its fd 4)
        # above 4, so that the dup2s in the child cannot clobber one another
        r1, w2 = [self._high(fd) for fd in (r1, w2)]

        def child_fds():
            os.dup2(r1, 3)
            os.dup2(w2, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + profile, "about:blank"],
            pass_fds=(3, 4, r1, w2), preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r1)
        os.close(w2)
        self.w = os.fdopen(w1, "wb", buffering=0)
        self.r = os.fdopen(r2, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events = []

    @staticmethod
    def _high(fd):
        h = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return h

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = self.r.read(65536)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.w.write(json.dumps(m).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            msg = self._read_msg(deadline)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, timeout=30):
        deadline = time.time() + timeout
        for e in self.events:
            if e["method"] == method:
                return e
        while True:
            msg = self._read_msg(deadline)
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def flatten_summary(s):
    """The --summary --json numbers under the page's data-k keys."""
    out = {"records": s["records"]}
    for k, v in s["events"].items():
        out["events." + k] = v
    for d in s["by_day_decision"]:
        for dec in ("allow", "rewrite", "deny"):
            out["by_day_decision.%s.%s" % (d["day"], dec)] = d[dec]
    for m in ("deny_by_dataset", "deny_by_group", "login_failures_by_reason", "sessions_by_application"):
        for k, v in s[m].items():
            out[m + "." + k] = v
    for r in s["restricted_reads"]:
        out["restricted_reads.%s.%s" % (r["user"], r["dataset"])] = r["count"]
    for f in s["top_denied_fingerprints"]:
        out["top_denied_fingerprints.%s.count" % f["fingerprint"]] = f["count"]
        out["top_denied_fingerprints.%s.users" % f["fingerprint"]] = f["users"]
    return out


def main():
    chromium, page, summary_path, shot = sys.argv[1:5]
    results = []

    def check(name, cond, why=""):
        results.append(("ok %s" % name) if cond else ("not ok %s: %s" % (name, why)))

    with open(summary_path) as f:
        summary = json.load(f)
    url = "file://" + os.path.abspath(page)
    profile = tempfile.mkdtemp(prefix="mg-chromium-")
    cdp = Cdp(chromium, profile)
    try:
        tid = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = cdp.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
            cdp.call(m, session=sid)
        cdp.call("Emulation.setDeviceMetricsOverride",
                 {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False}, session=sid)
        cdp.events.clear()
        cdp.call("Page.navigate", {"url": url}, session=sid)
        cdp.wait_event("Page.loadEventFired")
        time.sleep(0.3)   # late console messages, if any

        def js(expr):
            r = cdp.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=sid)
            if "exceptionDetails" in r:
                raise RuntimeError("evaluate %s: %s" % (expr, r["exceptionDetails"]))
            return r["result"].get("value")

        pairs = js("Array.from(document.querySelectorAll('[data-k]')).map(e => [e.dataset.k, e.textContent])")
        n_scripts = js("document.querySelectorAll('script').length")
        body_text = js("document.body.innerText")
        n_svg = js("document.querySelectorAll('svg.chart').length")
        srcs = js("Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))")
        shot_png = cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=sid)
        with open(shot, "wb") as f:
            f.write(base64.b64decode(shot_png["data"]))
        cdp.call("Emulation.setEmulatedMedia", {"media": "print"}, session=sid)
        shot_print = cdp.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=sid)
        with open(shot.replace(".png", "-print.png"), "wb") as f:
            f.write(base64.b64decode(shot_print["data"]))
        events = list(cdp.events)
    finally:
        cdp.close()

    noisy = [e for e in events if e["method"] in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]
    check("no console messages, exceptions or log entries", not noisy, json.dumps(noisy)[:800])
    reqs = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    check("the only request is the page itself", reqs == [url], "requests: %s" % reqs)
    check("no script element", n_scripts == 0, "%d script elements" % n_scripts)
    check("no src or href attribute at all", not srcs, "%s" % srcs)
    check("the <script> of a query shows as text", "<script>alert(1)</script>" in body_text, "not in the page text")
    check("seven charts drawn", n_svg == 7, "%d svg charts" % n_svg)

    page_nums = {}
    dup_bad = []
    for k, v in pairs:
        try:
            n = int(v)
        except ValueError:
            dup_bad.append("%s=%r is not a number" % (k, v))
            continue
        if k in page_nums and page_nums[k] != n:
            dup_bad.append("%s shows %d and %d" % (k, page_nums[k], n))
        page_nums[k] = n
    check("every data-k is a number, the same wherever it repeats", not dup_bad, "; ".join(dup_bad[:10]))
    want = flatten_summary(summary)
    missing = sorted(set(want) - set(page_nums))
    extra = sorted(set(page_nums) - set(want))
    differ = sorted(k for k in set(want) & set(page_nums) if want[k] != page_nums[k])
    check("every number of the summary is on the page", not missing, "missing: %s" % missing[:10])
    check("every number on the page is in the summary", not extra, "extra: %s" % extra[:10])
    check("the page's numbers equal --summary --json's (%d numbers)" % len(want), not differ and want,
          "; ".join("%s page %s json %s" % (k, page_nums[k], want[k]) for k in differ[:10]) or "no numbers")
    check("screenshot written", os.path.getsize(shot) > 10000, "%d bytes" % os.path.getsize(shot))
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
