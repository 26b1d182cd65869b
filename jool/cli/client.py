"""The CLI side of the control protocol (docs/control-protocol.md).

One request per connection on the abstract Unix socket `\\0<name>`, where <name> is
$JOOL_CONTROL_SOCKET or `jool-userspace/control`; each message is a 4-byte
big-endian length and UTF-8 JSON.

With no control process listening, the namespace behaves as an empty translator
(`offline_answer`), except for the requests that create instances, and any request
while the registry lists instances of a control process that died, which start the
control process ($JOOL_CONTROL_COMMAND, default `python -m jool.control --daemon`)
and retry for up to 5 seconds.
"""

import os
import shlex
import socket
import subprocess
import sys
import time

from jool.control import registry
from jool.control.protocol import recv_message, send_message

DEFAULT_SOCKET = "jool-userspace/control"
START_TIMEOUT = 5.0
REQUEST_TIMEOUT = 60.0
ESRCH = 3


class NoControlProcess(Exception):
    """Nobody listens on the namespace's socket."""


class Unreachable(Exception):
    """The control process exists but the exchange failed."""


def socket_name():
    return os.environ.get("JOOL_CONTROL_SOCKET") or DEFAULT_SOCKET


registry_dir = registry.registry_dir


def exchange(request, timeout=REQUEST_TIMEOUT):
    """Send one request, return the decoded response object."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect("\0" + socket_name())
        except (ConnectionRefusedError, FileNotFoundError):
            raise NoControlProcess() from None
        except OSError as exc:
            raise Unreachable(exc.strerror or str(exc)) from None
        try:
            send_message(sock, request)
            answer = recv_message(sock)
        except (OSError, ValueError, ConnectionError) as exc:
            raise Unreachable(getattr(exc, "strerror", None) or str(exc)) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
            raise Unreachable("malformed response")
        return answer
    finally:
        sock.close()


def offline_answer(request):
    """What an empty translator answers (no control process in this namespace)."""
    op = request["op"]
    if op == "instance.flush":
        return {"status": 0}
    if op == "instance.status":
        return {"status": 0, "data": "Dead"}
    if op == "instance.list":
        return {"status": 0, "data": []}
    name = request.get("instance", "default")
    return {"status": ESRCH,
            "messages": [f"This namespace lacks an instance named '{name}'."]}


def control_command():
    custom = os.environ.get("JOOL_CONTROL_COMMAND")
    if custom:
        return shlex.split(custom)
    return [sys.executable, "-m", "jool.control", "--daemon"]


def _child_env():
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    return env


def start_and_retry(request):
    """Start the namespace's control process, then send `request` once it answers."""
    try:
        child = subprocess.Popen(control_command(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=_child_env(), start_new_session=True)
    except OSError as exc:
        raise Unreachable(f"could not start the control process: {exc.strerror}") from None
    deadline = time.monotonic() + START_TIMEOUT
    delay = 0.02
    while True:
        try:
            answer = exchange(request)
            break
        except NoControlProcess:
            if time.monotonic() >= deadline:
                raise Unreachable("the control process did not start within "
                                  f"{START_TIMEOUT:g} seconds") from None
            if child.poll() not in (None, 0):
                raise Unreachable("the control process failed to start (exit status "
                                  f"{child.returncode})") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    child.poll()                        # reap a daemon launcher that has exited
    return answer


def call(request, start=False):
    """One request; `start`: launch the control process when none listens."""
    try:
        return exchange(request)
    except NoControlProcess:
        # Instances whose control process died are still translating: a new one
        # takes them over (control/server.py take_over) and answers.
        if start or registry.orphaned(registry.netns_id()):
            return start_and_retry(request)
        return offline_answer(request)


# `instance display` lists every namespace's instances from the registry.
registry_entries = registry.entries
