"""Framing and errors of the control protocol (docs/control-protocol.md):
length-prefixed JSON over an abstract Unix stream socket."""

import json
import os
import socket
import struct

DEFAULT_SOCKET = "jool-userspace/control"
MAX_MESSAGE = 256 * 1024 * 1024         # a display of millions of sessions still fits

# Jool's errno values (spec/cli.md §4)
EPERM = 1
ENOENT = 2
ESRCH = 3
EEXIST = 17
EINVAL = 22


class ControlError(Exception):
    """A failure to report to the client: errno-like status and messages."""

    def __init__(self, status, *messages):
        super().__init__(f"{status}: {'; '.join(messages)}")
        self.status = status
        self.messages = list(messages)


def socket_name():
    """The abstract socket's name (overridable for tests: JOOL_CONTROL_SOCKET)."""
    return os.environ.get("JOOL_CONTROL_SOCKET", DEFAULT_SOCKET)


def abstract_address(name=None):
    return "\0" + (name or socket_name())


def encode_message(obj):
    """A message as it goes on the wire: 4-byte big-endian length, then JSON."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("!I", len(data)) + data


def decode_body(data):
    """A message's JSON (what follows its length); ValueError unless an object."""
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError("a message must be a JSON object")
    return obj


def send_message(sock, obj):
    sock.sendall(encode_message(obj))


def _recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_message(sock):
    (length,) = struct.unpack("!I", _recv_exact(sock, 4))
    if length > MAX_MESSAGE:
        raise ValueError(f"message of {length} bytes exceeds the limit")
    return decode_body(_recv_exact(sock, length))


def request(obj, name=None, timeout=30.0):
    """One request/response with the control process of this namespace.
    Raises ConnectionRefusedError/FileNotFoundError when none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(abstract_address(name))
        send_message(sock, obj)
        return recv_message(sock)
