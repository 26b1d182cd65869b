"""Signed sync datagrams (jool/sync/signing.py, our extension): what a keyed
joold sends, and what it accepts, drops and counts; a keyless joold still
sends and takes 4.1.9's datagrams."""

import hashlib
import hmac
import struct

import pytest

from jool.sync import signing
from jool.sync.daemon import Joold
from jool.sync.signing import (ACCEPTED, FORGED, REPLAYED, TRAILER_SIZE, UNSIGNED, SyncKey,
                               load_key_file, strip_unverified)

KEY = b"correct horse battery staple 64"
OTHER_KEY = b"not the key the others share!!"
RECORDS = bytes(range(140)) * 2           # what is signed is opaque to signing.py
T = 1_700_000_000_000                     # a wall clock (ms) the tests move by hand


class Clock:
    def __init__(self):
        self.ms = T
        self.mono = 1000.0

    def wall(self):
        return self.ms

    def monotonic(self):
        return self.mono


@pytest.fixture
def clock():
    return Clock()


def pair(clock, key=KEY, receiver_key=KEY):
    sender = SyncKey(key, wall_clock_ms=clock.wall, monotonic=clock.monotonic)
    receiver = SyncKey(receiver_key, wall_clock_ms=clock.wall, monotonic=clock.monotonic)
    return sender, receiver


def test_trailer_layout(clock):
    sender = SyncKey(KEY, wall_clock_ms=clock.wall, sender_id=b"\x01" * 8)
    first, second = sender.sign(RECORDS), sender.sign(RECORDS)
    assert len(first) == len(RECORDS) + TRAILER_SIZE == len(RECORDS) + 60
    assert first[:len(RECORDS)] == RECORDS
    magic, sender_id, sequence, sent = struct.unpack_from("!4s8sQQ", first, len(RECORDS))
    assert (magic, sender_id, sequence, sent) == (b"JSS\x01", b"\x01" * 8, 0, T)
    assert struct.unpack_from("!Q", second, len(RECORDS) + 12)[0] == 1
    mac = hmac.new(KEY, first[:-32], hashlib.sha256).digest()
    assert first[-32:] == mac


def test_same_key_accepted_and_trailer_removed(clock):
    sender, receiver = pair(clock)
    assert receiver.verify(sender.sign(RECORDS)) == (ACCEPTED, RECORDS)


def test_unsigned_dropped(clock):
    _, receiver = pair(clock)
    for data in (RECORDS, b"", b"x" * 59, bytes(140 * 10)):
        assert receiver.verify(data) == (UNSIGNED, None)


def test_wrong_key_forged(clock):
    sender, receiver = pair(clock, receiver_key=OTHER_KEY)
    assert receiver.verify(sender.sign(RECORDS)) == (FORGED, None)


@pytest.mark.parametrize("where", [0, 139, 140 * 2 + 4, 140 * 2 + 12, 140 * 2 + 20, -1])
def test_any_altered_byte_is_forged(clock, where):
    sender, receiver = pair(clock)
    signed = bytearray(sender.sign(RECORDS))
    signed[where] ^= 0x40
    assert receiver.verify(bytes(signed)) == (FORGED, None)


def test_altered_magic_reads_as_unsigned(clock):
    sender, receiver = pair(clock)
    signed = bytearray(sender.sign(RECORDS))
    signed[140 * 2] ^= 0x01
    assert receiver.verify(bytes(signed))[0] == UNSIGNED


@pytest.mark.parametrize("cut", [1, 32, TRAILER_SIZE, TRAILER_SIZE + 140])
def test_truncated_never_accepted(clock, cut):
    sender, receiver = pair(clock)
    assert receiver.verify(sender.sign(RECORDS)[:-cut])[0] in (UNSIGNED, FORGED)


def test_a_record_moved_between_datagrams_is_forged(clock):
    """Splicing two authentic datagrams does not make a third one."""
    sender, receiver = pair(clock)
    a, b = sender.sign(RECORDS), sender.sign(bytes(280))
    assert receiver.verify(a[:140] + b[140:])[0] == FORGED


def test_replay_dropped(clock):
    sender, receiver = pair(clock)
    signed = sender.sign(RECORDS)
    assert receiver.verify(signed)[0] == ACCEPTED
    assert receiver.verify(signed) == (REPLAYED, None)


def test_reordering_within_the_window_accepted_once(clock):
    sender, receiver = pair(clock)
    datagrams = [sender.sign(RECORDS) for _ in range(10)]
    order = [3, 0, 9, 1, 2, 8, 4, 5, 7, 6]
    assert [receiver.verify(datagrams[i])[0] for i in order] == [ACCEPTED] * 10
    assert [receiver.verify(d)[0] for d in datagrams] == [REPLAYED] * 10


def test_too_far_behind_the_highest_dropped(clock):
    sender, receiver = pair(clock)
    old = sender.sign(RECORDS)
    sender.sequence += signing.REPLAY_WINDOW
    assert receiver.verify(sender.sign(RECORDS))[0] == ACCEPTED
    assert receiver.verify(old)[0] == REPLAYED


def test_a_big_jump_forward_accepted(clock):
    sender, receiver = pair(clock)
    assert receiver.verify(sender.sign(RECORDS))[0] == ACCEPTED
    sender.sequence += 10 * signing.REPLAY_WINDOW
    assert receiver.verify(sender.sign(RECORDS))[0] == ACCEPTED


@pytest.mark.parametrize("skew_ms", [-signing.FRESHNESS_MS - 1, signing.FRESHNESS_MS + 1])
def test_stale_or_future_dropped(clock, skew_ms):
    sender, receiver = pair(clock)
    signed = sender.sign(RECORDS)
    clock.ms -= skew_ms
    assert receiver.verify(signed) == (REPLAYED, None)


def test_within_freshness_accepted(clock):
    sender, receiver = pair(clock)
    signed = sender.sign(RECORDS)
    clock.ms += signing.FRESHNESS_MS
    assert receiver.verify(signed)[0] == ACCEPTED


def test_senders_are_told_apart(clock):
    a, receiver = pair(clock)
    b = SyncKey(KEY, wall_clock_ms=clock.wall)
    assert receiver.verify(a.sign(RECORDS))[0] == ACCEPTED
    assert receiver.verify(b.sign(RECORDS))[0] == ACCEPTED      # same sequence 0


def test_sender_memory_is_bounded(clock, monkeypatch):
    monkeypatch.setattr(signing, "MAX_SENDERS", 8)
    receiver = SyncKey(KEY, wall_clock_ms=clock.wall, monotonic=clock.monotonic)
    for _ in range(50):
        clock.mono += 1
        sender = SyncKey(KEY, wall_clock_ms=clock.wall)
        assert receiver.verify(sender.sign(RECORDS))[0] == ACCEPTED
    assert len(receiver._senders) <= 8


def test_short_keys_refused(tmp_path):
    with pytest.raises(ValueError):
        SyncKey(b"short")
    path = tmp_path / "key"
    path.write_bytes(b"  too short \n")
    with pytest.raises(ValueError):
        load_key_file(path)
    path.write_bytes(KEY + b"\n")
    assert load_key_file(path) == KEY


def test_keyless_receiver_strips_a_trailer_it_cannot_check(clock):
    sender, _ = pair(clock)
    assert strip_unverified(sender.sign(RECORDS)) == RECORDS
    assert strip_unverified(RECORDS) is RECORDS
    # 60 bytes after whole records but no magic: left for the decoder to reject.
    assert strip_unverified(RECORDS + bytes(60)) == RECORDS + bytes(60)


# ------------------------------------------------------------ the daemon's admission

def bare_joold(key):
    """A Joold without sockets: only what admit() uses."""
    daemon = Joold.__new__(Joold)
    daemon.init_admission(key)
    return daemon


def test_keyed_daemon_admits_and_counts():
    sender = SyncKey(KEY)
    daemon = bare_joold(KEY)
    assert daemon.admit(sender.sign(RECORDS)) == RECORDS
    assert daemon.admit(RECORDS) is None
    assert daemon.admit(SyncKey(OTHER_KEY).sign(RECORDS)) is None
    replayed = sender.sign(RECORDS)
    assert daemon.admit(replayed) == RECORDS
    assert daemon.admit(replayed) is None
    assert daemon.admit(sender.sign(RECORDS)[:2048], truncated=True) is None
    assert daemon.dropped_unreported == {"unsigned": 1, "forged": 1, "replayed": 1,
                                         "malformed": 1}


def test_keyless_daemon_relays_everything_as_4_1_9():
    daemon = bare_joold(None)
    assert daemon.admit(RECORDS) is RECORDS
    assert daemon.admit(b"random junk") == b"random junk"
    assert daemon.admit(SyncKey(KEY).sign(RECORDS)) == RECORDS
    assert daemon.dropped_unreported == dict.fromkeys(daemon.dropped_unreported, 0)


def test_the_largest_signed_datagram_is_read_whole():
    """ss-max-payload caps a datagram at 14 records; with the trailer it still
    fits in what a receiving joold reads (2048 bytes), so none gets cut."""
    from jool.sync import wire
    most = wire.records_per_datagram(65535) * wire.RECORD_SIZE
    assert most + TRAILER_SIZE <= wire.MAX_DATAGRAM
