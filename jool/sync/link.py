"""A long-lived, non-blocking stream of control-protocol frames (4-byte length,
JSON object; jool/control/protocol.py): the session-sync link between a control
process and its joold, used by both ends inside their select loops."""

import json
import logging
import struct

from jool.control.protocol import MAX_MESSAGE

log = logging.getLogger("jool.sync")

MAX_BUFFERED = 64 * 1024 * 1024     # unsent bytes beyond this: the peer is stuck


class LinkClosed(Exception):
    pass


class FrameLink:
    """Frames in and out of a connected stream socket that stays non-blocking."""

    def __init__(self, sock):
        self.sock = sock
        sock.setblocking(False)
        self._in = bytearray()
        self._out = bytearray()
        self.closed = False

    def fileno(self):
        return self.sock.fileno()

    @property
    def wants_write(self):
        return bool(self._out)

    @property
    def backlog(self):
        """Bytes queued and not yet taken by the peer."""
        return len(self._out)

    def send(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self._out += struct.pack("!I", len(data)) + data
        if len(self._out) > MAX_BUFFERED:
            self.close()
            raise LinkClosed("the peer stopped reading")
        self.flush()

    def flush(self):
        """Writes what the socket takes now; the rest waits for writability."""
        while self._out and not self.closed:
            try:
                sent = self.sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.close()
                raise LinkClosed(str(exc)) from None
            del self._out[:sent]

    def receive(self):
        """Every complete frame readable now, as dicts. Raises LinkClosed at
        end of stream or on a malformed frame (the link is then useless)."""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.close()
                raise LinkClosed(str(exc)) from None
            if not chunk:
                self.close()
                raise LinkClosed("closed by the peer")
            self._in += chunk
            if len(chunk) < (1 << 20):
                break
        frames = []
        while len(self._in) >= 4:
            (length,) = struct.unpack_from("!I", self._in)
            if length > MAX_MESSAGE:
                self.close()
                raise LinkClosed(f"a frame of {length} bytes")
            if len(self._in) < 4 + length:
                break
            body = bytes(self._in[4:4 + length])
            del self._in[:4 + length]
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                self.close()
                raise LinkClosed("a frame that is not a JSON object")
            frames.append(obj)
        return frames

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
