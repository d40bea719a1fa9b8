"""What scripts/chaos.py and scripts/bench.py share: messages and the progress line, free
ports, the `corridor` program's JSON answers, starting and stopping nodes, and turning
SIGTERM/SIGHUP into an exception so that every `finally` runs (Ctrl-C already raises
KeyboardInterrupt). Standard library only.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def say(text):
    print(text, file=sys.stderr, flush=True)


class Failed(Exception):
    """A check or a step failed: the message is for the user, the exit code is 1."""


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived (not an Exception: nothing below catches it by accident)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, _frame):
    raise Stopped(signum)


def catch_signals():
    """SIGTERM and SIGHUP raise Stopped in the main thread, so cleanup runs as on Ctrl-C."""
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _raise_stopped)


def ignore_signals():
    """For the cleanup itself: a second Ctrl-C must not leave processes or namespaces behind."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


class Progress:
    """One line on a terminal, rewritten in place with \\r; nothing when stderr is no tty."""

    def __init__(self):
        self.on = sys.stderr.isatty()
        self.width = 0

    def show(self, text):
        if not self.on:
            return
        line = "   " + text
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = max(self.width, len(line))

    def done(self):
        """Ends the line (once something was shown), so what follows starts on its own."""
        if self.on and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()
        self.width = 0


_port_rng = random.Random()


def free_port(*taken):
    """A loopback TCP port P with P and P+1 free (a node takes its stream on P+1), away from
    the ports given and the one after each (scripts/free_port.py prints one)."""
    blocked = {int(t) + d for t in taken for d in (-1, 0, 1)}
    for _ in range(400):
        p = _port_rng.randint(15000, 30000)
        if p in blocked:
            continue
        sockets = []
        try:
            for port in (p, p + 1):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return p
    raise Failed("no free pair of loopback ports in 400 tries")


def run(cmd, timeout=None, **kw):
    """subprocess.run without a shell; a timeout counts as exit 124 (the child is killed)."""
    try:
        return subprocess.run(cmd, timeout=timeout, **kw).returncode
    except subprocess.TimeoutExpired:
        return 124


def corridor_json(c, *args, timeout=60):
    """Runs `corridor ARGS --json`; returns (exit code, the parsed document or None)."""
    try:
        r = subprocess.run([c, *args, "--json"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, None
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        return r.returncode, None


def status(c, home, timeout=30):
    """The running node's `status --json`, or None when it does not answer."""
    rc, doc = corridor_json(c, "status", "--home", home, timeout=timeout)
    return doc if rc == 0 and isinstance(doc, dict) else None


def wait_running(c, home, tries=100):
    """Until the node in HOME answers `status` (tries x 0.1 s at most)."""
    for _ in range(tries):
        if status(c, home) is not None:
            return True
        time.sleep(0.1)
    return False


def start_node(cmd, log, env=None, append=False):
    """Starts `corridor run` (CMD, a list) with stderr and stdout into LOG. In a session of its
    own: a Ctrl-C on the terminal reaches this program, whose cleanup stops the node."""
    with open(log, "ab" if append else "wb") as f:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env,
                                start_new_session=True)


def stop_process(p, grace=0.0):
    """SIGTERM, up to GRACE seconds, then SIGKILL; reaps it. Nothing when it already ended."""
    if p is None or p.poll() is not None:
        return
    if grace > 0:
        try:
            p.terminate()
            p.wait(timeout=grace)
            return
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        p.kill()
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip("\n")
    except OSError:
        return ""
