#!/usr/bin/env python3
"""console_browser.py - drives the web console in Debian's headless chromium through
chromedriver's WebDriver protocol (a dozen HTTP calls, standard library only), and checks what
the page shows against the REST API of the same server.

usage: console_browser.py SERVER_URL TOKEN FULL_TASK PAUSED_TASK SHOT_DIR
Prints one line per failed check on stderr; exit status 1 if any failed. test_console.sh
prepares the server, the source rows and the paused task.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

BASE, TOKEN, FULL, PAUSED, SHOTS = sys.argv[1:6]
FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def http(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def rest(method, path, body=None):
    return http(method, BASE + "/api/v1" + path, body, {"Authorization": "Bearer " + TOKEN})


def status_of(task):
    code, j = rest("GET", "/tasks/%s/status" % task)
    return (j or {}).get("data", [{}])[0] if code == 200 else {}


class Driver:
    """The few WebDriver commands the test needs (W3C protocol, chromedriver)."""

    def __init__(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = subprocess.Popen(["chromedriver", "--port=%d" % self.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = "http://127.0.0.1:%d" % self.port
        for _ in range(100):
            try:
                http("GET", self.url + "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                            "--disable-dev-shm-usage", "--window-size=1280,800"]}}}}
        code, j = http("POST", self.url + "/session", caps)
        if code != 200:
            raise RuntimeError("no browser session: %s" % j)
        self.sid = j["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        code, j = http(method, "%s/session/%s%s" % (self.url, self.sid, path), body)
        if code != 200:
            raise RuntimeError("%s %s: %s" % (method, path, j))
        return j["value"]

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        v = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return list(v.values())[0]

    def click(self, css):
        # the page rebuilds its rows every few seconds: find again if the element went stale
        for attempt in range(5):
            try:
                self.cmd("POST", "/element/%s/click" % self.find(css), {})
                return
            except RuntimeError as e:
                if "stale element" not in str(e) or attempt == 4:
                    raise

    def type(self, css, text):
        self.cmd("POST", "/element/%s/value" % self.find(css), {"text": text})

    def keys(self, *keys):
        acts = []
        for k in keys:
            acts += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
        self.cmd("POST", "/actions", {"actions": [{"type": "key", "id": "kb", "actions": acts}]})

    def shot(self, name):
        import base64
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        with open(os.path.join(SHOTS, name), "wb") as f:
            f.write(png)

    def log(self):
        return self.cmd("POST", "/se/log", {"type": "browser"})

    def quit(self):
        try:
            http("DELETE", "%s/session/%s" % (self.url, self.sid))
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def wait(what, fn, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except RuntimeError:
            pass
        time.sleep(0.2)
    fail("timed out waiting for " + what)
    return None


SUB = '[data-task="%s"].sub'


def main():
    d = Driver()
    try:
        scenario(d)
    finally:
        d.quit()


def scenario(d):
    # 1. Without the token the page loads, says it needs one and puts the focus on the box.
    d.cmd("POST", "/url", {"url": BASE + "/console"})
    wait("the token prompt", lambda: "bearer token" in d.js("return document.getElementById('msg').textContent"))
    if d.js("return document.activeElement.id") != "token":
        fail("the focus is not on the token box after a 401")
    d.log()   # drop the deliberate 401 of the first load; from here on the console must stay clean

    # 2. The token typed in the page is used (kept in sessionStorage) and the tasks appear.
    d.type("#token", TOKEN)
    d.keys("\ue007")   # Enter in the token box
    wait("the task rows", lambda: d.js("return document.querySelectorAll('#tasks tr').length") >= 2)
    if d.js("return sessionStorage.getItem('sluice-token')") != TOKEN:
        fail("the token is not kept in sessionStorage")
    names = d.js("return [...document.querySelectorAll('#sources td:first-child')].map(e => e.textContent)")
    if names != ["con-src"]:
        fail("sources shown: %s, want ['con-src']" % names)

    # 3. The paused task's error, as the API has it.
    want_err = wait("the paused task's error in the API", lambda: status_of(PAUSED).get("error_msg"), 60)
    got = wait("the paused task's error on the page", lambda: d.js(
        "const e = document.querySelector(arguments[0] + ' [data-field=error]'); return e && e.textContent",
        SUB % PAUSED))
    stage = d.js("return document.querySelector(arguments[0] + ' [data-field=stage]').textContent", SUB % PAUSED)
    if stage != "Paused":
        fail("the paused task shows stage %r" % stage)
    if not got or want_err not in got:
        fail("the page shows %r, the API %r" % (got, want_err))

    # 4. The editor shows the server compiler's errors at their JSON paths.
    d.js("document.getElementById('editor').value = arguments[0]",
         json.dumps({"task": {"name": "x", "task_mode": "everything", "source_config": {"source_conf": [{"source_name": "nope"}]}}}))
    d.click("#check")
    code, chk = rest("POST", "/tasks/check", {"task": {"name": "x", "task_mode": "everything", "source_config": {"source_conf": [{"source_name": "nope"}]}}})
    want_paths = sorted(p["path"] for p in chk["errors"])
    got_paths = wait("the compiler's errors", lambda: sorted(d.js(
        "return [...document.querySelectorAll('#problems li.err')].map(e => e.dataset.path)")) or None)
    if code != 200 or not want_paths or got_paths != want_paths:
        fail("editor error paths %s, the check endpoint says %s" % (got_paths, want_paths))
    if d.js("return document.querySelectorAll('#tasks tr').length") != 2:
        fail("checking created a task")

    # 5. Start the full task from the page with the keyboard, and watch its progress advance.
    d.js("document.querySelector('button[data-action=start][data-task=\"%s\"]').focus()" % FULL)
    d.keys("\ue007")
    seen = []
    end = time.time() + 90
    while time.time() < end:
        v = d.js("""return refresh().then(() => {
            const s = document.querySelector(arguments[0]);
            if (!s) return null;
            const bar = (k) => { const b = [...s.querySelectorAll('[role=progressbar]')].find(e => e.getAttribute('aria-label') === k + ' progress');
                                 return b ? parseFloat(b.getAttribute('aria-valuenow')) : null; };
            return [bar('Dump'), bar('Load'), s.querySelector('[data-field=unit]').textContent];
        })""", SUB % FULL)
        if v and v not in seen:
            seen.append(v)
        if v and v[2] == "unit Sync":
            break
        time.sleep(0.1)
    dumps = [s[0] for s in seen if s[0] is not None]
    # While the dump runs the load's total is an estimate (chunks arrive as it loads), so the
    # load bar is held to advancing only once the unit is Load; the dump bar throughout.
    loads = [s[1] for s in seen if s[1] is not None and s[2] == "unit Load"]
    print("progress seen (dump %%, load %%, unit): %s" % seen)
    if not dumps or dumps[-1] < 100.0 or len(set(dumps)) < 2 or dumps != sorted(dumps):
        fail("the dump bar did not advance to 100: %s" % seen)
    # the last Load sample and 100 % can fall between two polls: the bar must rise during Load
    # and stand at 100 by the time the unit is Sync
    final = seen[-1][1] if seen and seen[-1][2] == "unit Sync" else None
    if not loads or len(set(loads)) < 2 or loads != sorted(loads) or \
            max(loads[-1], final if final is not None else 0.0) < 100.0:
        fail("the load bar did not advance to 100 in the Load unit: %s" % seen)
    if not seen or seen[-1][2] != "unit Sync":
        fail("the full task did not reach the Sync unit on the page: %s" % seen[-1:])
    d.shot("console-1280x800.png")

    # 6. The pipeline drawn as its DAG: one box per stage of the status, with the stage ids.
    st = status_of(FULL)
    ids = [g["id"] for g in st.get("stages", [])]
    boxes = d.js("return document.querySelectorAll(arguments[0] + ' svg.dag rect').length", SUB % FULL)
    text = d.js("return document.querySelector(arguments[0] + ' svg.dag').textContent", SUB % FULL)
    if not ids or boxes != len(ids) or not all(i in text for i in ids):
        fail("DAG has %s boxes (%r), the status %s stages" % (boxes, text[:200], ids))

    # 7. The lag chart draws what the server sampled once the task replicates.
    def lag_samples():
        code, j = rest("GET", "/console/lag?task=" + FULL)
        return [s for x in j.get("data", []) for s in x["samples"] if s[1] >= 0]
    if wait("a lag sample of the replicating task", lag_samples, 40):
        pts = wait("the lag line", lambda: d.js("""return refresh().then(() => {
            const p = document.querySelector(arguments[0] + ' svg.lag polyline');
            return p && p.getAttribute('points').split(' ').length; })""", SUB % FULL))
        if not pts:
            fail("no lag line drawn")

    # 8. Stop it from the page (with the confirmation), then start it again.
    d.click('button[data-action=stop][data-task="%s"]' % FULL)
    if not d.js("return document.getElementById('confirm').open"):
        fail("stop did not ask for a confirmation")
    d.click("#confirm-yes")
    wait("Stopped in the API", lambda: status_of(FULL).get("stage") == "Stopped")
    wait("Stopped on the page", lambda: d.js(
        "return refresh().then(() => document.querySelector(arguments[0] + ' [data-field=stage]').textContent)",
        SUB % FULL) == "Stopped")
    d.click('button[data-action=start][data-task="%s"]' % FULL)
    wait("Running again in the API", lambda: status_of(FULL).get("stage") == "Running")
    wait("Running again on the page", lambda: d.js(
        "return refresh().then(() => document.querySelector(arguments[0] + ' [data-field=stage]').textContent)",
        SUB % FULL) == "Running")

    # 9. Delete asks too; cancelling keeps the task.
    d.click('button[data-action=delete][data-task="%s"]' % PAUSED)
    d.click("#confirm-no")
    if rest("GET", "/tasks/" + PAUSED)[0] != 200:
        fail("cancelled delete removed the task")

    # 10. Phone width: nothing wider than the screen.
    d.cmd("POST", "/window/rect", {"width": 390, "height": 844})
    time.sleep(0.5)
    over = d.js("return document.documentElement.scrollWidth - window.innerWidth")
    if over > 0:
        fail("the page is %d px wider than a phone screen" % over)
    d.shot("console-phone.png")

    # 11. No console message of level SEVERE (JavaScript errors, failed requests) since step 1.
    bad = [e for e in d.log() if e.get("level") == "SEVERE"]
    if bad:
        fail("browser console errors: %s" % bad[:5])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a broken driver is a failure, never a skip
        fail("driver: %r" % e)
    sys.exit(1 if FAILS else 0)
