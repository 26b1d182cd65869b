"""The workers' classic BPF filter (jool/dataplane/bpf.py), run by a small
interpreter written here from the classic BPF definition (linux/filter.h) against
frames built with pktlib, and checked against an oracle that reads the same frames
independently; then attached to a real socket in a throwaway namespace."""

import ipaddress
import os
import random
import secrets
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pktlib as pl
from jool.dataplane import bpf

ROOT = Path(__file__).resolve().parents[2]

HOST, BROADCAST, MULTICAST, OTHERHOST, OUTGOING = 0, 1, 2, 3, 4
ACCEPT = 0x40000
SKF_AD_PKTTYPE_K = (-0x1000 + 4) & 0xFFFFFFFF

GRAYBOX_POOL4 = [(p, "192.0.2.2", 1, 3000) for p in ("tcp", "udp", "icmp")]
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


# ------------------------------------------------------------------ interpreter
class BadProgram(AssertionError):
    pass


def validate(program):
    """What the kernel's checker would refuse: too long, unknown instructions,
    jumps outside the program, a last instruction that is not a return."""
    if not 0 < len(program) <= 4096:
        raise BadProgram(f"{len(program)} instructions")
    for pc, (code, jt, jf, k) in enumerate(program):
        if not (0 <= jt <= 255 and 0 <= jf <= 255 and 0 <= k <= 0xFFFFFFFF):
            raise BadProgram(f"field out of range at {pc}")
        cls = code & 0x07
        if cls == 0x05:
            if code == 0x05:
                targets = [pc + 1 + k]
            elif code in (0x15, 0x25, 0x35, 0x45):
                targets = [pc + 1 + jt, pc + 1 + jf]
            else:
                raise BadProgram(f"jump {code:#x} at {pc}")
            if any(t >= len(program) for t in targets):
                raise BadProgram(f"jump out of the program at {pc}")
        elif code not in (0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0xb1, 0x54, 0x06):
            raise BadProgram(f"instruction {code:#x} at {pc}")
    if program[-1][0] != 0x06:
        raise BadProgram("the last instruction is not a return")


def run(program, frame, pkttype=HOST):
    """Classic BPF over frame: the instructions the generator may emit."""
    a = x = 0
    pc = 0

    def load(off, size):
        if off < 0 or off + size > len(frame):
            return None
        return int.from_bytes(frame[off:off + size], "big")

    steps = 0
    while True:
        steps += 1
        assert steps <= len(program)            # forward jumps only
        code, jt, jf, k = program[pc]
        pc += 1
        size = {0x00: 4, 0x08: 2, 0x10: 1}.get(code & 0x18)
        if code in (0x20, 0x28, 0x30):                      # ld{,h,b} [k]
            if code == 0x20 and k == SKF_AD_PKTTYPE_K:
                a = pkttype
                continue
            a = load(k, size)
            if a is None:
                return 0
        elif code in (0x40, 0x48, 0x50):                    # ld{,h,b} [x + k]
            a = load(x + k, size)
            if a is None:
                return 0
        elif code == 0xb1:                                  # ldx 4*([k] & 0xf)
            b = load(k, 1)
            if b is None:
                return 0
            x = 4 * (b & 0xF)
        elif code == 0x54:                                  # and #k
            a &= k
        elif code == 0x05:                                  # ja
            pc += k
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x25:
            pc += jt if a > k else jf
        elif code == 0x35:
            pc += jt if a >= k else jf
        elif code == 0x45:
            pc += jt if a & k else jf
        elif code == 0x06:
            return k
        else:
            raise BadProgram(f"instruction {code:#x}")


def eth(packet, ethertype=None):
    if ethertype is None:
        ethertype = 0x86dd if packet[0] >> 4 == 6 else 0x0800
    return MAC_A + MAC_B + struct.pack("!H", ethertype) + packet


# ------------------------------------------------------------------ oracle
def oracle(frame, pkttype, prefixes, pool4, local):
    """Does the translator own this frame? Read straight from the bytes."""
    if pkttype != HOST or len(frame) < 14:
        return False
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[14:]
    if ethertype == 0x86dd:
        if len(ip) < 40:
            return False
        dst = ipaddress.IPv6Address(ip[24:40])
        return any(dst in ipaddress.IPv6Network(p) for p in prefixes)
    if ethertype != 0x0800 or len(ip) < 20:
        return False
    ihl = (ip[0] & 0xF) * 4
    dst = str(ipaddress.IPv4Address(ip[16:20]))
    proto = ip[9]
    nonfirst = struct.unpack_from("!H", ip, 6)[0] & 0x1FFF
    if pool4:
        addresses = {a for _, a, _, _ in pool4}
        if dst not in addresses:
            return False
        if nonfirst or proto == 1:
            return True
        if proto not in (6, 17) or len(ip) < ihl + 4:
            return False
        port = struct.unpack_from("!H", ip, ihl + 2)[0]
        name = "tcp" if proto == 6 else "udp"
        return any(p == name and a == dst and min(lo, hi) <= port <= max(lo, hi)
                   for p, a, lo, hi in pool4)
    if dst not in local:
        return False
    if nonfirst:
        return True
    if proto in (6, 17):
        return len(ip) >= ihl + 4 and struct.unpack_from("!H", ip, ihl + 2)[0] >= 61001
    if proto != 1 or len(ip) < ihl + 1:
        return False
    icmp = ip[ihl:]
    if icmp[0] in (0, 8):
        return len(icmp) >= 6 and struct.unpack_from("!H", icmp, 4)[0] >= 61001
    if icmp[0] not in (3, 4, 5, 11, 12) or len(icmp) < 8 + 20 or icmp[8] != 0x45:
        return False
    inner = icmp[8:]
    if inner[9] in (6, 17):
        return len(inner) >= 22 and struct.unpack_from("!H", inner, 20)[0] >= 61001
    if inner[9] == 1:
        return len(inner) >= 26 and struct.unpack_from("!H", inner, 24)[0] >= 61001
    return False


def check(program, frame, pkttype, pool6, pool4, local=()):
    prefixes = [pool6] if isinstance(pool6, str) else list(pool6 or [])
    expected = oracle(frame, pkttype, prefixes, pool4, set(local))
    got = run(program, frame, pkttype)
    assert got in (0, ACCEPT)
    assert (got == ACCEPT) == expected, (frame.hex(), pkttype, expected)
    return expected


# ------------------------------------------------------------------ frames
def v4(dst, l4, src="203.0.113.7", **kw):
    return eth(pl.ipv4(src, dst, l4, **kw))


def v6(dst, l4, src="2001:db8::5", **kw):
    return eth(pl.ipv6(src, dst, l4, **kw))


def owns(program, frame, pkttype=HOST):
    return run(program, frame, pkttype) == ACCEPT


# ------------------------------------------------------------------ the graybox setting
@pytest.fixture(scope="module")
def graybox():
    program = bpf.owned_filter("64:ff9b::/96", GRAYBOX_POOL4)
    validate(program)
    return program


def test_graybox_ipv6(graybox):
    assert owns(graybox, v6("64:ff9b::192.0.2.5", pl.udp(2000, 4000)))
    assert owns(graybox, v6("64:ff9b::ffff:ffff", pl.tcp(1, 2)))
    assert owns(graybox, v6("64:ff9b::", pl.icmp6_echo(1)))
    assert owns(graybox, v6("64:ff9b::c000:205", pl.udp(1, 2), exts=[pl.frag(7, 8, True)]))
    assert not owns(graybox, v6("64:ff9b:0:0:0:1::", pl.udp(2000, 4000)))
    assert not owns(graybox, v6("64:ff9a::c000:205", pl.udp(2000, 4000)))
    assert not owns(graybox, v6("2001:db8::1", pl.icmp6_echo(1)))
    # Neighbour discovery for the translator's own address stays the kernel's.
    ns = pl.icmp6(135, 0, payload=ipaddress.IPv6Address("2001:db8::1").packed)
    assert not owns(graybox, v6("ff02::1:ff00:1", ns, hlim=255))


def test_graybox_ipv4(graybox):
    for proto in (pl.tcp, pl.udp):
        assert not owns(graybox, v4("192.0.2.2", proto(5000, 0)))
        assert owns(graybox, v4("192.0.2.2", proto(5000, 1)))
        assert owns(graybox, v4("192.0.2.2", proto(5000, 3000)))
        assert not owns(graybox, v4("192.0.2.2", proto(5000, 3001)))
        assert not owns(graybox, v4("192.0.2.2", proto(5000, 4101)))
        assert not owns(graybox, v4("192.0.2.3", proto(5000, 2000)))
        assert not owns(graybox, v4("192.0.2.1", proto(5000, 2000)))
    for icmp in (pl.icmp4_echo(1), pl.icmp4_echo(9999, reply=True), pl.icmp4(13, 0),
                 pl.icmp4_error(3, 3, pl.ipv4("192.0.2.2", "203.0.113.7", pl.udp(7, 8)))):
        assert owns(graybox, v4("192.0.2.2", icmp))
        assert not owns(graybox, v4("192.0.2.3", icmp))
    assert not owns(graybox, v4("192.0.2.2", pl.raw(47, b"\0" * 20)))        # GRE
    assert not owns(graybox, v4("192.0.2.2", pl.raw(132, b"\0" * 20)))       # SCTP


def test_graybox_fragments(graybox):
    body = pl.udp(5000, 4101, b"x" * 40)
    # A first fragment has ports; a later one has none and belongs by address.
    assert not owns(graybox, v4("192.0.2.2", body, mf=True))
    assert owns(graybox, v4("192.0.2.2", pl.udp(5000, 2000, b"x" * 40), mf=True))
    later = pl.raw(17, b"y" * 16)
    assert owns(graybox, v4("192.0.2.2", later, offset=48, mf=True))
    assert owns(graybox, v4("192.0.2.2", later, offset=48))
    assert owns(graybox, v4("192.0.2.2", pl.raw(6, b"z" * 8), offset=8))
    assert not owns(graybox, v4("192.0.2.3", later, offset=48))


def test_ihl_is_honoured(graybox):
    for words in (1, 3, 10):
        options = pl.lsrr(("198.51.100.%d" % i for i in range(1, 2 * words)))[:4 * words]
        options = options + b"\x01" * (-len(options) % 4)
        inside = v4("192.0.2.2", pl.udp(60000, 2000), options=options)
        outside = v4("192.0.2.2", pl.udp(2000, 60000), options=options)
        assert owns(graybox, inside) and not owns(graybox, outside)


def test_not_for_this_host(graybox):
    frame = v4("192.0.2.2", pl.udp(5000, 2000))
    assert owns(graybox, frame, HOST)
    for pkttype in (BROADCAST, MULTICAST, OTHERHOST, OUTGOING):
        assert not owns(graybox, frame, pkttype)
        assert not owns(graybox, v6("64:ff9b::192.0.2.5", pl.udp(1, 2)), pkttype)


def test_other_frames(graybox):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_B,
                      ipaddress.IPv4Address("192.0.2.5").packed, b"\0" * 6,
                      ipaddress.IPv4Address("192.0.2.2").packed)
    assert not owns(graybox, eth(arp, 0x0806))
    tagged = eth(struct.pack("!HH", 5, 0x0800) + pl.ipv4("203.0.113.7", "192.0.2.2",
                                                         pl.udp(1, 2000)), 0x8100)
    assert not owns(graybox, tagged)
    assert not owns(graybox, eth(pl.ipv4("203.0.113.7", "192.0.2.2", pl.udp(1, 2000)),
                                 0x86dd))
    # Truncated frames: a load past the end rejects.
    full = v4("192.0.2.2", pl.udp(5000, 2000))
    for cut in (0, 10, 14, 20, 33, 34, 35):
        assert not owns(graybox, full[:cut])
    assert owns(graybox, full[:38])
    assert not owns(graybox, v6("64:ff9b::1", pl.udp(1, 2))[:49])     # prefix cut


# ------------------------------------------------------------------ pool6 lengths
PREFIX_BYTES = bytes.fromhex("20010db8a1b2c3d4e5f60718293a4b5c")


@pytest.mark.parametrize("plen", [32, 40, 48, 56, 64, 96])
def test_every_pool6_length(plen):
    network = ipaddress.IPv6Network((PREFIX_BYTES[:plen // 8] + bytes(16 - plen // 8), plen))
    program = bpf.owned_filter(str(network), [])
    validate(program)
    base = bytearray(network.network_address.packed)
    inside = pl.embed(str(network), "192.0.2.33")
    assert owns(program, v6(inside, pl.udp(1, 2)))
    assert check(program, v6(inside, pl.tcp(1, 2)), HOST, str(network), [])
    for bit in range(plen):                          # any difference inside the prefix
        other = bytearray(base)
        other[bit // 8] ^= 0x80 >> (bit % 8)
        frame = v6(str(ipaddress.IPv6Address(bytes(other))), pl.udp(1, 2))
        assert not owns(program, frame), bit
    for bit in range(plen, 128):                     # none past it
        other = bytearray(base)
        other[bit // 8] ^= 0x80 >> (bit % 8)
        frame = v6(str(ipaddress.IPv6Address(bytes(other))), pl.udp(1, 2))
        assert owns(program, frame), bit
    # IPv4 is nobody's without pool4.
    assert not owns(program, v4("192.0.2.2", pl.udp(1, 2)))


def test_several_prefixes_and_none():
    program = bpf.owned_filter(["64:ff9b::/96", "2001:db8:64::/48"], [])
    validate(program)
    assert owns(program, v6("64:ff9b::1", pl.udp(1, 2)))
    assert owns(program, v6("2001:db8:64:ff::1", pl.udp(1, 2)))
    assert not owns(program, v6("2001:db8:65::1", pl.udp(1, 2)))
    nothing = bpf.owned_filter(None, [])
    validate(nothing)
    assert not owns(nothing, v6("64:ff9b::1", pl.udp(1, 2)))
    assert not owns(nothing, v4("192.0.2.2", pl.icmp4_echo(1)))


# ------------------------------------------------------------------ pool4 ranges
def test_pool4_boundaries_per_protocol():
    pool4 = [("tcp", "192.0.2.2", 1, 3000), ("udp", "192.0.2.2", 2000, 1000),  # reversed
             ("udp", "192.0.2.2", 2500, 2500), ("udp", "192.0.2.2", 2001, 2100),  # adjacent
             ("icmp", "192.0.2.9", 0, 65535), ("tcp", "192.0.2.2", 100, 200),     # overlap
             ("tcp", "198.51.100.255", 65535, 65535), ("udp", "198.51.100.0", 0, 0)]
    program = bpf.owned_filter(None, pool4)
    validate(program)
    cases = {
        ("tcp", "192.0.2.2"): {0: 0, 1: 1, 150: 1, 3000: 1, 3001: 0, 65535: 0},
        ("udp", "192.0.2.2"): {999: 0, 1000: 1, 2000: 1, 2001: 1, 2100: 1, 2101: 0,
                               2499: 0, 2500: 1, 2501: 0},
        ("tcp", "192.0.2.9"): {1: 0, 2000: 0},
        ("udp", "192.0.2.9"): {1: 0},
        ("tcp", "198.51.100.255"): {65534: 0, 65535: 1},
        ("udp", "198.51.100.0"): {0: 1, 1: 0},
        ("udp", "198.51.100.255"): {65535: 0},
    }
    for (proto, dst), ports in cases.items():
        for port, want in ports.items():
            l4 = pl.tcp(9, port) if proto == "tcp" else pl.udp(9, port)
            frame = v4(dst, l4)
            assert owns(program, frame) == bool(want), (proto, dst, port)
            check(program, frame, HOST, None, pool4)
    for dst in ("192.0.2.2", "192.0.2.9", "198.51.100.255", "198.51.100.0"):
        assert owns(program, v4(dst, pl.icmp4_echo(7)))
        assert owns(program, v4(dst, pl.raw(17, b"q" * 8), offset=16))
    for dst in ("192.0.2.1", "192.0.2.3", "192.0.2.8", "192.0.2.10", "198.51.100.1",
                "0.0.0.0", "255.255.255.255"):
        assert not owns(program, v4(dst, pl.icmp4_echo(7)))
        assert not owns(program, v4(dst, pl.raw(17, b"q" * 8), offset=16))
        assert not owns(program, v4(dst, pl.udp(9, 2000)))


def _random_pool4(rng, addresses, entries):
    pool4 = []
    for _ in range(entries):
        addr = rng.choice(addresses)
        lo = rng.choice([0, 1, rng.randrange(65536), 65535])
        hi = min(65535, lo + rng.choice([0, 1, rng.randrange(40), rng.randrange(3000)]))
        pool4.append((rng.choice(["tcp", "udp", "icmp"]), addr, lo, hi))
    return pool4


def _probes(rng, pool4, addresses, count):
    interesting = {0, 1, 65535, 61000, 61001}
    for _, _, lo, hi in pool4:
        interesting.update(p for p in (lo - 1, lo, hi, hi + 1) if 0 <= p <= 65535)
    interesting = sorted(interesting)
    near = [str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(a)) + d))
            for a in addresses for d in (-1, 0, 1)]
    for _ in range(count):
        dst = rng.choice(near)
        port = rng.choice(interesting) if rng.random() < 0.8 else rng.randrange(65536)
        kind = rng.randrange(6)
        if kind == 0:
            l4 = pl.tcp(rng.randrange(65536), port)
        elif kind == 1:
            l4 = pl.udp(rng.randrange(65536), port)
        elif kind == 2:
            l4 = pl.icmp4_echo(port)
        else:
            l4 = [pl.tcp, pl.udp][kind % 2](1, port)
        frag = {}
        if kind == 5:
            frag = {"offset": 8 * rng.randrange(1, 100), "mf": rng.random() < 0.5}
        elif kind == 4 and rng.random() < 0.3:
            frag = {"mf": True}
        yield v4(dst, l4, **frag)


@pytest.mark.parametrize("seed,naddr,nentries", [(1, 1, 5), (2, 4, 20), (3, 30, 60),
                                                  (4, 200, 400), (5, 64, 700)])
def test_random_pool4_against_oracle(seed, naddr, nentries):
    rng = random.Random(seed)
    base = rng.choice([0x0A000000, 0xC0000200, 0xC6336400, 0xFFFFFF00 - naddr])
    addresses = [str(ipaddress.IPv4Address(base + rng.randrange(naddr * 2) if naddr > 1
                                           else base)) for _ in range(naddr)]
    pool4 = _random_pool4(rng, addresses, nentries)
    program = bpf.owned_filter("64:ff9b::/96", pool4)
    validate(program)
    owned = 0
    for frame in _probes(rng, pool4, addresses, 1500):
        owned += check(program, frame, HOST, "64:ff9b::/96", pool4)
    assert owned > 50


def test_long_programs_use_far_jumps_correctly():
    """Hundreds of addresses, each with its own ranges: a program far longer than
    a conditional jump reaches (255)."""
    rng = random.Random(9)
    pool4 = []
    for i in range(250):
        addr = str(ipaddress.IPv4Address(0xC6120000 + 3 * i))
        pool4.append(("tcp", addr, i * 7, i * 7 + 3))
        pool4.append(("udp", addr, 60000 - i, 60000))
    program = bpf.owned_filter("64:ff9b::/96", pool4)
    validate(program)
    assert 1000 < len(program) <= 4096
    assert any(code == 0x05 for code, _, _, _ in program)           # trampolines
    addresses = sorted({a for _, a, _, _ in pool4})
    for frame in _probes(rng, pool4, addresses, 3000):
        check(program, frame, HOST, "64:ff9b::/96", pool4)


def test_merging_keeps_big_pools_small():
    # A /16 with the same ranges everywhere: one address interval per protocol.
    pool4 = [(p, str(ipaddress.IPv4Address(0xC6120000 + i)), 1000, 2000)
             for i in range(65536) for p in ("tcp", "udp")]
    program = bpf.owned_filter("64:ff9b::/96", pool4)
    validate(program)
    assert len(program) < 80
    assert owns(program, v4("198.18.77.77", pl.udp(1, 1500)))
    assert owns(program, v4("198.18.255.255", pl.tcp(1, 2000)))
    assert not owns(program, v4("198.18.255.255", pl.tcp(1, 2001)))
    assert not owns(program, v4("198.19.0.0", pl.tcp(1, 1500)))
    assert not owns(program, v4("198.17.255.255", pl.tcp(1, 1500)))
    assert owns(program, v4("198.18.0.0", pl.icmp4_echo(5)))


@pytest.mark.parametrize("naddr,level", [(800, 1), (1200, 0), (2500, -1)])
def test_too_fragmented_pools_widen_but_never_lose_a_frame(naddr, level):
    rng = random.Random(11)
    addresses = [str(ipaddress.IPv4Address(0x0A000000 + rng.randrange(1 << 20)))
                 for _ in range(naddr)]
    pool4 = _random_pool4(rng, addresses, int(naddr * 1.6))
    program = bpf.owned_filter("64:ff9b::/96", pool4)
    validate(program)
    for frame in _probes(rng, pool4, addresses[:300], 2000):
        if oracle(frame, HOST, ["64:ff9b::/96"], pool4, set()):
            assert owns(program, frame)
    assert not owns(program, v6("2001:db8::1", pl.udp(1, 2)))
    assert not owns(program, v4(addresses[0], pl.udp(1, 2)), OUTGOING)
    # How wide it went: ports (level 1), protocols (0), addresses (-1).
    tcp_only = sorted({a for p, a, _, _ in pool4 if p == "tcp"}
                      - {a for p, a, _, _ in pool4 if p == "udp"})[0]
    busy = {(a, port) for p, a, lo, hi in pool4 if p == "tcp" for port in (lo, hi)}
    free_port = next(port for port in range(65536) if (tcp_only, port) not in busy
                     and not any(p == "tcp" and a == tcp_only and lo <= port <= hi
                                 for p, a, lo, hi in pool4))
    assert owns(program, v4(tcp_only, pl.tcp(1, free_port))) == (level <= 1)
    assert owns(program, v4(tcp_only, pl.udp(1, free_port))) == (level <= 0)
    assert owns(program, v4("192.0.2.200", pl.udp(1, 2))) == (level <= -1)


# ------------------------------------------------------------------ empty pool4
def test_empty_pool4_uses_local_addresses_and_high_ports():
    local = ["192.0.2.2", "198.51.100.7"]
    program = bpf.owned_filter("64:ff9b::/96", [], local)
    validate(program)
    for dst in local:
        for proto in (pl.tcp, pl.udp):
            assert not owns(program, v4(dst, proto(9, 61000)))
            assert owns(program, v4(dst, proto(9, 61001)))
            assert owns(program, v4(dst, proto(9, 65535)))
            assert not owns(program, v4(dst, proto(9, 22)))
        assert owns(program, v4(dst, pl.icmp4_echo(61001, reply=True)))
        assert owns(program, v4(dst, pl.icmp4_echo(65535)))
        assert not owns(program, v4(dst, pl.icmp4_echo(61000, reply=True)))
        assert not owns(program, v4(dst, pl.icmp4(13, 0, rest=struct.pack("!HH", 62000, 0))))
        # Errors about a packet the translator sent from a high port or identifier.
        for inner, want in ((pl.udp(61001, 53), True), (pl.tcp(65000, 80), True),
                            (pl.udp(40000, 53), False), (pl.icmp4_echo(61234), True),
                            (pl.icmp4_echo(1234), False)):
            quoted = pl.ipv4(dst, "203.0.113.9", inner)
            for t, c in ((3, 1), (11, 0), (12, 0), (4, 0), (5, 1)):
                frame = v4(dst, pl.icmp4_error(t, c, quoted), src="203.0.113.1")
                assert owns(program, frame) == want, (t, inner.data[:4].hex())
                check(program, frame, HOST, "64:ff9b::/96", [], local)
        # A quoted header with options is left alone (nftables cannot follow it).
        quoted = pl.ipv4(dst, "203.0.113.9", pl.udp(61001, 53), options=pl.lsrr())
        assert not owns(program, v4(dst, pl.icmp4_error(3, 3, quoted)))
        assert owns(program, v4(dst, pl.raw(17, b"w" * 8), offset=64))
    for proto in (pl.tcp, pl.udp):
        assert not owns(program, v4("192.0.2.3", proto(9, 62000)))
    assert not owns(program, v4("192.0.2.3", pl.icmp4_echo(62000)))
    assert not owns(program, v4("192.0.2.2", pl.udp(9, 62000)), OUTGOING)
    rng = random.Random(3)
    for frame in _probes(rng, [("udp", a, 61001, 65535) for a in local], local, 800):
        check(program, frame, HOST, "64:ff9b::/96", [], local)


def test_empty_pool4_addresses_count_only_while_pool4_is_empty():
    program = bpf.owned_filter(None, [("udp", "192.0.2.2", 1, 10)], ["198.51.100.7"])
    assert not owns(program, v4("198.51.100.7", pl.udp(9, 62000)))
    assert owns(program, v4("192.0.2.2", pl.udp(9, 10)))


# ------------------------------------------------------------------ the socket
def test_pack_layout():
    program = [(0x28, 0, 0, 12), (0x15, 1, 2, 0x86dd), (0x06, 0, 0, 0x40000)]
    raw = bpf.pack(program)
    assert len(raw) == 8 * len(program)
    assert struct.unpack("=HBBI", raw[8:16]) == (0x15, 1, 2, 0x86dd)
    assert bpf.pack([(0x20, 0, 0, bpf.SKF_AD_OFF + 4)])[4:] == struct.pack("=I", 0xFFFFF004)


ATTACH_PROBE = textwrap.dedent("""
    import json, socket, sys, time
    sys.path.insert(0, sys.argv[1])
    from jool.dataplane import bpf
    import random, ipaddress
    big = [("tcp", str(ipaddress.IPv4Address(0x0A000000 + 5 * i)), i, i + 3)
           for i in range(300)]
    rng = random.Random(5)
    huge = [(p, str(ipaddress.IPv4Address(0x0A000000 + 3 * i)), lo, lo + rng.randrange(50))
            for i in range(560) for p, lo in (("tcp", rng.randrange(60000)),
                                              ("udp", rng.randrange(60000)))]
    lengths = []
    for program in (bpf.owned_filter("64:ff9b::/96", big),
                    bpf.owned_filter("64:ff9b::/96", huge),
                    bpf.owned_filter(None, [], ["192.0.2.2"])):
        probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        bpf.attach(probe, program)                               # the kernel checks it
        probe.close()
        lengths.append(len(program))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    bpf.attach(sock, bpf.owned_filter(None, [("udp", "127.0.0.1", 5000, 5001)]))
    sock.bind(("lo", 0x0003))
    sock.settimeout(0.3)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listeners = []              # so that no port unreachable (ICMP to 127.0.0.1) arises
    for port in (5000, 5002, 5001, 4999):
        listeners.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        listeners[-1].bind(("127.0.0.1", port))
    for port in (5000, 5002, 5001, 4999):
        tx.sendto(b"hello %d" % port, ("127.0.0.1", port))
    got = []
    try:
        while True:
            data, addr = sock.recvfrom(65536)
            got.append([int.from_bytes(data[36:38], "big"), addr[2]])
    except socket.timeout:
        pass
    print(json.dumps([got, lengths]))
""")


def test_a_real_socket_takes_the_filter():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    name = f"jbpf-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, timeout=30)
        done = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", ATTACH_PROBE,
                               str(ROOT)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        import json
        # Only the received copies (PACKET_HOST) of datagrams to 5000 and 5001: not
        # the outgoing copies loopback also shows, not the other ports.
        got, lengths = json.loads(done.stdout)
        assert got == [[5000, HOST], [5001, HOST]]
        assert lengths[0] > 256 and 3500 < lengths[1] <= 4096, lengths
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30)
