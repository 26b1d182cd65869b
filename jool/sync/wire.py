"""Jool 4.1.9's session-synchronization wire format (spec/joold.md §4), in bulk.

A datagram is N fixed 140-byte records and nothing else. Each record is a tree of
netlink attributes whose lengths and types never change, so the whole format is
one numpy structured dtype: encoding fills a template, decoding views the bytes,
checks every constant header field at once and keeps the records that pass.
Header fields and integers are in the sender's host byte order (little-endian
here, as on every Jool host this has to talk to); addresses are network-order
bytes.
"""

import numpy as np

RECORD_SIZE = 140
MAX_DATAGRAM = 2048                    # what a receiving joold reads (§4.1)
NLA_F_NESTED = 0x8000
TYPE_MASK = 0x3FFF

PROTO_TCP, PROTO_UDP, PROTO_ICMP = 0, 1, 2
TIMER_EST, TIMER_TRANS, TIMER_SYN4 = 0, 1, 2
MAX_STATE = 6                          # TCP states 0-6 (§4.3)

_U2 = "<u2"
# (offset, length, type, nested) of every attribute header of a record (§4.3).
HEADERS = (
    (0, 140, 1, True),                 # the list entry
    (4, 32, 1, True), (8, 20, 1, False), (28, 6, 2, False),        # src6
    (36, 32, 2, True), (40, 20, 1, False), (60, 6, 2, False),      # dst6
    (68, 20, 3, True), (72, 8, 1, False), (80, 6, 2, False),       # src4
    (88, 20, 4, True), (92, 8, 1, False), (100, 6, 2, False),      # dst4
    (108, 5, 5, False), (116, 5, 6, False), (124, 5, 7, False),    # proto state timer
    (132, 8, 8, False),                                            # expiration
)

RECORD = np.dtype({
    "names": ["src6", "src6_port", "dst6", "dst6_port", "src4", "src4_port",
              "dst4", "dst4_port", "proto", "state", "timer", "expires"],
    "formats": ["V16", _U2, "V16", _U2, "V4", _U2, "V4", _U2, "u1", "u1", "u1", "<u4"],
    "offsets": [12, 32, 44, 64, 76, 84, 96, 104, 112, 120, 128, 136],
    "itemsize": RECORD_SIZE,
})
# The same bytes seen as attribute headers: (length, type) pairs at HEADERS' offsets.
_HEADER_VIEW = np.dtype({
    "names": [f"h{i}" for i in range(len(HEADERS))],
    "formats": ["<u4"] * len(HEADERS),
    "offsets": [off for off, _l, _t, _n in HEADERS],
    "itemsize": RECORD_SIZE,
})


def _expected(nested_flag):
    return np.array([length | ((kind | (NLA_F_NESTED if nested and nested_flag else 0)) << 16)
                     for _off, length, kind, nested in HEADERS], dtype=np.uint32)


_EXPECTED_MASKED = np.array([length | (kind << 16) for _o, length, kind, _n in HEADERS],
                            dtype=np.uint32)
_MASK = np.uint32(0xFFFF | (TYPE_MASK << 16))


def empty(n):
    """n zeroed records to fill in (field names: RECORD)."""
    return np.zeros(n, dtype=RECORD)


def encode(records, nested_flag=True):
    """Bytes of a datagram carrying the records (a RECORD array). nested_flag sets
    NLA_F_NESTED on the containers, as Jool does on kernels >= 5.2 (§4.2)."""
    records = np.asarray(records, dtype=RECORD)
    out = np.zeros(len(records), dtype=RECORD)
    heads = out.view(_HEADER_VIEW)
    for i, value in enumerate(_expected(nested_flag)):
        heads[f"h{i}"] = value
    for name in RECORD.names:
        out[name] = records[name]
    return out.tobytes()


def decode(data):
    """(records, rejected): the well-formed records of a datagram, and how many
    were not (a bad header, protocol, state or timer class, or a truncated tail).
    Never raises on any input."""
    data = bytes(data[:MAX_DATAGRAM])
    whole = len(data) // RECORD_SIZE
    truncated = 1 if len(data) % RECORD_SIZE else 0
    if whole == 0:
        return np.zeros(0, dtype=RECORD), truncated
    records, bad = decode_records(data[:whole * RECORD_SIZE])
    return records, bad + truncated


def records_per_datagram(max_payload):
    """How many records one datagram carries for a ss-max-payload value (§4.4):
    the translator's 32 bytes of headers come off the payload; at least one."""
    return max(1, min((max_payload - 32) // RECORD_SIZE, MAX_DATAGRAM // RECORD_SIZE))


def decode_many(datagrams):
    """decode() over many datagrams at once: (records, rejected, malformed).
    Each datagram is read up to MAX_DATAGRAM bytes and its whole well-formed
    records kept, as 4.1.9 does; rejected counts the records that were not
    (a truncated tail counts as one), malformed the datagrams that were not
    entirely well-formed (empty, not a whole number of records, longer than
    MAX_DATAGRAM, or holding a rejected record). One vectorized check covers
    them all."""
    parts = []
    owners = []                         # for each part, the datagram it came from
    bad_datagram = np.zeros(len(datagrams), dtype=bool)
    rejected = 0
    for i, data in enumerate(datagrams):
        if len(data) > MAX_DATAGRAM or not data:
            bad_datagram[i] = True
        data = data[:MAX_DATAGRAM]
        whole = len(data) - len(data) % RECORD_SIZE
        if whole != len(data):
            rejected += 1
            bad_datagram[i] = True
        if whole:
            parts.append(data[:whole] if whole != len(data) else data)
            owners.append(i)
    if not parts:
        return np.zeros(0, dtype=RECORD), rejected, int(bad_datagram.sum())
    joined = b"".join(parts)
    good = check_records(np.frombuffer(joined, dtype=RECORD))
    if not good.all():
        per_part = np.array([len(p) // RECORD_SIZE for p in parts])
        record_owner = np.repeat(np.array(owners), per_part)
        bad_datagram[record_owner[~good]] = True
    raw = np.frombuffer(joined, dtype=RECORD)
    return raw[good].copy(), rejected + int(len(raw) - good.sum()), int(bad_datagram.sum())


def check_records(raw):
    """A mask of the records (a RECORD array) whose every constant header
    field and small-valued field is as §4.3 says."""
    heads = raw.view(_HEADER_VIEW)
    good = np.ones(len(raw), dtype=bool)
    for i, value in enumerate(_EXPECTED_MASKED):
        good &= (heads[f"h{i}"] & _MASK) == value
    good &= raw["proto"] <= PROTO_ICMP
    good &= raw["state"] <= MAX_STATE
    good &= raw["timer"] <= TIMER_SYN4
    return good


def decode_records(data):
    """(records, rejected) of bytes holding whole records only (any number)."""
    raw = np.frombuffer(data, dtype=RECORD)
    good = check_records(raw)
    return raw[good].copy(), int(len(raw) - good.sum())
