"""Signed session-sync datagrams: our extension to Jool 4.1.9's joold, which
authenticates nothing (spec/joold.md §1).

With a shared key in its netsocket file ("x-shared-key-file", jool/cli/joold.py),
joold appends a trailer to every datagram it sends and accepts only datagrams
whose trailer verifies. Without a key nothing is appended, so what goes on the
wire is 4.1.9's format byte for byte.

Trailer (TRAILER_SIZE = 60 bytes, after the records; integers big-endian):

    off  size  field
      0     4  magic "JSS" and format version 1 (b"JSS\\x01")
      4     8  sender id: random, drawn when joold starts
     12     8  sequence number: 0, 1, 2... per datagram of this sender id
     20     8  send time, milliseconds since the Unix epoch
     28    32  HMAC-SHA256(key, records + trailer bytes 0-27)

A 4.1.9 datagram is a whole number of 140-byte records, so a signed one (60
bytes more) can never be mistaken for an unsigned one, and a receiver without a
key (4.1.9 included) reads the records and skips the trailer as it would a
truncated record.

Replays: a datagram is accepted only if its send time is within FRESHNESS_MS of
the receiver's clock (so the nodes' clocks must agree to within that; NTP is
plenty) and its sequence number was not seen before from that sender id (a
sliding window of REPLAY_WINDOW numbers below the highest seen, like IPsec's).
A sender id silent for longer than twice the freshness span (clocks may be that
far apart either way) is forgotten: anything it sent before then is stale anyway.
"""

import hashlib
import hmac
import os
import struct
import time

MAGIC = b"JSS\x01"
_HEAD = struct.Struct("!4s8sQQ")            # magic, sender id, sequence, send time
MAC_SIZE = 32
TRAILER_SIZE = _HEAD.size + MAC_SIZE        # 60
MIN_KEY_BYTES = 16
FRESHNESS_MS = 60_000
REPLAY_WINDOW = 1024
MAX_SENDERS = 4096                          # bounds memory even with a leaked key

# What a receiver makes of a datagram.
ACCEPTED = "accepted"
UNSIGNED = "unsigned"                       # no trailer at all
FORGED = "forged"                           # a trailer whose MAC does not verify
REPLAYED = "replayed"                       # authentic, but stale or already seen


def has_trailer(data):
    """Whether data ends in something shaped like our trailer (unverified)."""
    return len(data) >= TRAILER_SIZE and data[-TRAILER_SIZE:-TRAILER_SIZE + 4] == MAGIC


def strip_unverified(data):
    """A keyless receiver's view of a datagram: the records without a trailer
    that a keyed peer appended (it cannot check it; 4.1.9 would skip it too)."""
    if len(data) % 140 == TRAILER_SIZE and has_trailer(data):
        return data[:-TRAILER_SIZE]
    return data


class _SenderState:
    __slots__ = ("highest", "seen", "last_heard")

    def __init__(self, sequence, now):
        self.highest = sequence
        self.seen = 1                       # bit i: highest - i was seen
        self.last_heard = now


class SyncKey:
    """Signs outgoing datagrams and checks incoming ones with one shared key."""

    def __init__(self, key, wall_clock_ms=None, monotonic=time.monotonic, sender_id=None):
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the shared key must be at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)
        self._wall_ms = wall_clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._monotonic = monotonic
        self.sender_id = sender_id if sender_id is not None else os.urandom(8)
        self.sequence = 0
        self._senders = {}

    def _mac(self, signed_part):
        return hmac.new(self._key, signed_part, hashlib.sha256).digest()

    def sign(self, records):
        head = _HEAD.pack(MAGIC, self.sender_id, self.sequence, self._wall_ms())
        self.sequence += 1
        return records + head + self._mac(records + head)

    def verify(self, data):
        """(verdict, records): records is the datagram without its trailer when
        the verdict is ACCEPTED, else None."""
        if not has_trailer(data):
            return UNSIGNED, None
        body_end = len(data) - MAC_SIZE
        if not hmac.compare_digest(self._mac(data[:body_end]), data[body_end:]):
            return FORGED, None
        _magic, sender, sequence, sent_ms = _HEAD.unpack_from(data, len(data) - TRAILER_SIZE)
        if abs(self._wall_ms() - sent_ms) > FRESHNESS_MS:
            return REPLAYED, None
        if not self._first_time(sender, sequence):
            return REPLAYED, None
        return ACCEPTED, data[:len(data) - TRAILER_SIZE]

    def _first_time(self, sender, sequence):
        """Records (sender, sequence) as seen; False when it was already, or is
        too far behind the highest to tell."""
        now = self._monotonic()
        state = self._senders.get(sender)
        if state is None:
            self._forget_silent(now)
            self._senders[sender] = _SenderState(sequence, now)
            return True
        state.last_heard = now
        if sequence > state.highest:
            shift = sequence - state.highest
            state.seen = ((state.seen << shift) | 1) if shift < REPLAY_WINDOW else 1
            state.seen &= (1 << REPLAY_WINDOW) - 1
            state.highest = sequence
            return True
        behind = state.highest - sequence
        if behind >= REPLAY_WINDOW or state.seen >> behind & 1:
            return False
        state.seen |= 1 << behind
        return True

    def _forget_silent(self, now):
        """Sender ids silent for longer than the freshness span could only send
        stale datagrams now; the oldest go too if there are too many."""
        if len(self._senders) < MAX_SENDERS // 2:
            return
        horizon = now - 2 * FRESHNESS_MS / 1000.0
        for sender in [s for s, st in self._senders.items() if st.last_heard < horizon]:
            del self._senders[sender]
        while len(self._senders) >= MAX_SENDERS:
            oldest = min(self._senders, key=lambda s: self._senders[s].last_heard)
            del self._senders[oldest]


def load_key_file(path):
    """The key in a file: its bytes, surrounding whitespace (a final newline)
    left out. Any text does; `head -c 32 /dev/urandom | base64` makes a good one."""
    with open(path, "rb") as f:
        key = f.read().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: the shared key must be at least {MIN_KEY_BYTES} bytes")
    return key
