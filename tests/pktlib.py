"""Small, independent packet builder/parser for the tests (stdlib only).

Derived from the RFCs (791, 8200, 768, 793, 792, 4443, 4884, 6052, 1071), not from
the translator's code, so it can serve as an oracle.

Building
--------
L4 builders return an ``L4`` object; the IP builders fill in the checksum (which
for TCP/UDP/ICMPv6 covers the pseudo-header) unless told otherwise::

    pkt = ipv6("2001:db8::1", "64:ff9b::c000:201", udp(1000, 53, b"hi"))
    pkt = ipv4("192.0.2.1", "192.0.2.2", tcp(80, 1000, flags=SYN), df=True)
    err = ipv4(r, h, icmp4_error(3, 4, quoted=orig, mtu=1400))

``csum_delta=n`` on an L4 builder (or ``hdr_csum_delta`` on ipv4()) adds n to a
correct checksum (ones' complement), making it wrong by a known amount; ``csum=v``
forces a literal value.

Parsing
-------
``parse(bytes)`` returns a ``Packet`` (see its attributes); for ICMP errors
``p.inner`` is the parsed quoted packet (truncation tolerated).
"""
import ipaddress
import struct

# IP protocol / next-header numbers
HOPOPT, ICMP, TCP, UDP, ROUTING, FRAGMENT, ICMPV6, NONXT, DSTOPTS = 0, 1, 6, 17, 43, 44, 58, 59, 60
EXT_HEADERS = (HOPOPT, ROUTING, FRAGMENT, DSTOPTS)

# TCP flags
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

# ICMP error types
ICMP4_ERRORS = (3, 4, 5, 11, 12)
ICMP6_ERRORS = (1, 2, 3, 4)


# ---------------------------------------------------------------- checksums
def ones_sum(data, start=0):
    """16-bit ones' complement sum (folded, not complemented) of data."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = start
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data, start=0):
    """Internet checksum (RFC 1071) of data, as it goes in a header field."""
    return (~ones_sum(data, start)) & 0xFFFF


def csum_add(a, b):
    """Ones' complement addition of two 16-bit values."""
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def csum_diff(actual, correct):
    """Ones' complement difference actual - correct, normalised so that 0 means equal
    (0x0000 and 0xFFFF are both 'zero' in ones' complement)."""
    d = csum_add(actual, (~correct) & 0xFFFF)
    return 0 if d == 0xFFFF else d


def _a4(a):
    return ipaddress.IPv4Address(a).packed


def _a6(a):
    return ipaddress.IPv6Address(a).packed


def pseudo4(src, dst, proto, length):
    return _a4(src) + _a4(dst) + struct.pack("!BBH", 0, proto, length)


def pseudo6(src, dst, nh, length):
    return _a6(src) + _a6(dst) + struct.pack("!IxxxB", length, nh)


# --------------------------------------------------------------------- L4
class L4:
    """A transport segment under construction.

    proto: protocol number; data: bytes with the checksum field zero; csum_off:
    offset of the checksum field (None: no checksum); pseudo: whether the
    checksum covers the pseudo-header (ICMPv4 does not); csum/csum_delta: see
    module docstring; zero_csum: leave a UDP checksum at 0."""

    def __init__(self, proto, data, csum_off=None, pseudo=True, csum=None, csum_delta=0,
                 zero_csum=False):
        self.proto, self.data, self.csum_off, self.pseudo = proto, bytes(data), csum_off, pseudo
        self.csum, self.csum_delta, self.zero_csum = csum, csum_delta, zero_csum

    def render(self, pseudo_hdr):
        data = bytearray(self.data)
        if self.csum_off is None:
            return bytes(data)
        if self.csum is not None:
            c = self.csum
        elif self.zero_csum:
            c = 0
        else:
            c = checksum(data, ones_sum(pseudo_hdr) if self.pseudo else 0)
            if self.proto == UDP and c == 0:
                c = 0xFFFF
            if self.csum_delta:
                c = csum_add(c, self.csum_delta % 0xFFFF)
        struct.pack_into("!H", data, self.csum_off, c)
        return bytes(data)


def raw(proto, payload=b""):
    """An opaque payload of any protocol (no checksum handling)."""
    return L4(proto, payload)


def tcp(sport, dport, seq=0, ack=0, flags=SYN, window=8192, payload=b"", options=b"",
        urg=0, **kw):
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, urg)
    return L4(TCP, hdr + options + payload, 16, **kw)


def udp(sport, dport, payload=b"", length=None, **kw):
    ln = 8 + len(payload) if length is None else length
    return L4(UDP, struct.pack("!HHHH", sport, dport, ln, 0) + payload, 6, **kw)


def icmp4(type_, code, rest=b"\0\0\0\0", payload=b"", **kw):
    return L4(ICMP, struct.pack("!BBH", type_, code, 0) + rest + payload, 2, pseudo=False, **kw)


def icmp6(type_, code, rest=b"\0\0\0\0", payload=b"", **kw):
    return L4(ICMPV6, struct.pack("!BBH", type_, code, 0) + rest + payload, 2, **kw)


def icmp4_echo(ident, seq=0, payload=b"", reply=False, **kw):
    return icmp4(0 if reply else 8, 0, struct.pack("!HH", ident, seq), payload, **kw)


def icmp6_echo(ident, seq=0, payload=b"", reply=False, **kw):
    return icmp6(129 if reply else 128, 0, struct.pack("!HH", ident, seq), payload, **kw)


def ext_structure(objects=((1, 1, b"\0\0\0\x2a"),), csum_delta=0):
    """RFC 4884 extension structure: header (version 2, checksum) + objects given
    as (class_num, c_type, payload)."""
    body = b"".join(struct.pack("!HBB", 4 + len(p), cn, ct) + p for cn, ct, p in objects)
    hdr = bytearray(struct.pack("!BBH", 0x20, 0, 0))
    c = checksum(bytes(hdr) + body)
    if csum_delta:
        c = csum_add(c, csum_delta)
    struct.pack_into("!H", hdr, 2, c)
    return bytes(hdr) + body


def _with_ext(quoted, ext, unit):
    """RFC 4884: original datagram zero-padded to >= 128 bytes and to a multiple of
    `unit`; returns (body, length field in `unit`s)."""
    if ext is None:
        return quoted, 0
    q = quoted + b"\0" * max(0, 128 - len(quoted))
    q += b"\0" * (-len(q) % unit)
    return q + ext, len(q) // unit


def icmp4_error(type_, code, quoted, mtu=0, pointer=0, ext=None, length=None, **kw):
    """ICMPv4 error quoting `quoted` (bytes of the original packet).
    Dest Unreach: mtu goes in bytes 6-7; Param Problem: pointer in byte 4.
    ext: RFC 4884 extension structure bytes (length field set; `length` overrides)."""
    body, ln = _with_ext(quoted, ext, 4)
    if length is not None:
        ln = length
    if type_ == 12:
        rest = struct.pack("!BBH", pointer, ln, 0)
    else:
        rest = struct.pack("!xBH", ln, mtu if type_ == 3 else 0)
    return icmp4(type_, code, rest, body, **kw)


def icmp6_error(type_, code, quoted, mtu=0, pointer=0, ext=None, length=None, **kw):
    """ICMPv6 error quoting `quoted`. PTB: mtu (32 bits); Param Problem: pointer
    (32 bits); Dest Unreach / Time Exceeded: RFC 4884 length in byte 4."""
    body, ln = _with_ext(quoted, ext, 8)
    if length is not None:
        ln = length
    if type_ == 2:
        rest = struct.pack("!I", mtu)
    elif type_ == 4:
        rest = struct.pack("!I", pointer)
    else:
        rest = struct.pack("!Bxxx", ln)
    return icmp6(type_, code, rest, body, **kw)


# ----------------------------------------------------------- IPv6 extensions
class Ext:
    """An IPv6 extension header; `body` excludes the next-header byte."""

    def __init__(self, kind, body):
        self.kind, self.body = kind, bytes(body)

    def render(self, nh):
        return bytes([nh]) + self.body


def _padded_opts(opts):
    # options area so that the header is a multiple of 8: 2 + len(opts) + pad
    n = 2 + len(opts)
    pad = -n % 8
    if pad == 1:
        opts += b"\0"  # Pad1
    elif pad:
        opts += bytes([1, pad - 2]) + b"\0" * (pad - 2)  # PadN
    return opts


def hbh(options=b""):
    o = _padded_opts(options)
    return Ext(HOPOPT, bytes([(2 + len(o)) // 8 - 1]) + o)


def dstopts(options=b""):
    o = _padded_opts(options)
    return Ext(DSTOPTS, bytes([(2 + len(o)) // 8 - 1]) + o)


def routing(segments_left=0, rtype=0, addresses=("2001:db8::99",)):
    """Routing header; segments left is byte 3 of the header."""
    data = b"\0\0\0\0" + b"".join(_a6(a) for a in addresses)  # reserved + addresses
    return Ext(ROUTING, bytes([(len(data) + 4) // 8 - 1, rtype, segments_left]) + data)


def frag(ident, offset=0, mf=False):
    """Fragment header; offset in bytes (multiple of 8)."""
    assert offset % 8 == 0
    return Ext(FRAGMENT, struct.pack("!BHI", 0, offset | int(mf), ident))


# ------------------------------------------------------------------- IP
def ipv6(src, dst, l4, hlim=64, tc=0, flow=0, exts=(), plen=None, l4_len=None):
    """IPv6 packet. l4: L4 object (checksum computed over its data with the
    upper-layer length = len(data), or l4_len if given, e.g. for a first fragment
    give the length of the whole datagram's L4 part and a pre-truncated L4)."""
    ph = pseudo6(src, dst, l4.proto, len(l4.data) if l4_len is None else l4_len)
    body = l4.render(ph)
    kinds = [e.kind for e in exts] + [l4.proto]
    ext_bytes = b"".join(e.render(kinds[i + 1]) for i, e in enumerate(exts))
    payload = ext_bytes + body
    ln = len(payload) if plen is None else plen
    first = (6 << 28) | (tc << 20) | flow
    return struct.pack("!IHBB", first, ln, kinds[0], hlim) + _a6(src) + _a6(dst) + payload


def ipv4(src, dst, l4, ttl=64, tos=0, ident=0, df=False, mf=False, offset=0, options=b"",
         total_length=None, hdr_csum=None, hdr_csum_delta=0, l4_len=None, proto=None):
    """IPv4 packet; offset in bytes (multiple of 8); options padded by caller to 4n."""
    assert len(options) % 4 == 0 and offset % 8 == 0
    p = l4.proto if proto is None else proto
    ph = pseudo4(src, dst, p, len(l4.data) if l4_len is None else l4_len)
    body = l4.render(ph)
    ihl = 5 + len(options) // 4
    tl = ihl * 4 + len(body) if total_length is None else total_length
    fo = (0x4000 if df else 0) | (0x2000 if mf else 0) | (offset // 8)
    hdr = bytearray(struct.pack("!BBHHHBBH", 0x40 | ihl, tos, tl, ident, fo, ttl, p, 0)
                    + _a4(src) + _a4(dst) + options)
    c = checksum(hdr) if hdr_csum is None else hdr_csum
    if hdr_csum_delta:
        c = csum_add(c, hdr_csum_delta)
    struct.pack_into("!H", hdr, 10, c)
    return bytes(hdr) + body


def lsrr(addresses=("198.51.100.9",), pointer=4, ssrr=False):
    """IPv4 loose (or strict) source route option, NOP-padded to 4n bytes.
    Unexpired while pointer <= length."""
    data = b"".join(_a4(a) for a in addresses)
    opt = bytes([137 if ssrr else 131, 3 + len(data), pointer]) + data
    return opt + b"\x01" * (-len(opt) % 4)


# ------------------------------------------------------------------ parsing
class Packet:
    """Parsed packet. Attributes (None when not applicable):
    version, src, dst (str), proto (upper-layer protocol), hlim/ttl, tos/tc, flow,
    payload_length (v6) / total_length (v4), ihl, options, ident, df, mf, frag_offset
    (bytes), hdr_csum, exts (list of (kind, bytes) incl. the fragment header),
    frag (dict ident/offset/mf or None), l4 (bytes after the IP headers),
    l4_offset, sport, dport, seq, ack, flags, l4_csum, type, code, icmp_id, icmp_seq,
    mtu, pointer, icmp_length (RFC 4884 field), quoted (original-datagram bytes),
    ext (RFC 4884 extension bytes or None), inner (Packet of quoted), payload
    (TCP/UDP payload or ICMP data after the 8-byte header), truncated, raw."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        keys = ("version", "src", "dst", "proto", "type", "code", "sport", "dport", "icmp_id")
        return "Packet(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in keys
                                        if getattr(self, k, None) is not None)

    @property
    def is_fragment(self):
        return bool(self.mf or self.frag_offset)


_FIELDS = ("version src dst proto hlim ttl tos tc flow payload_length total_length ihl options "
           "ident df mf frag_offset hdr_csum exts frag l4 l4_offset sport dport seq ack flags "
           "l4_csum type code icmp_id icmp_seq mtu pointer icmp_length quoted ext inner "
           "payload truncated raw").split()


def parse(data, inner=False):
    """Parse an IPv4/IPv6 packet. inner=True tolerates truncation (quoted packets)."""
    data = bytes(data)
    p = Packet(**{k: None for k in _FIELDS})
    p.raw, p.truncated = data, False
    p.version = data[0] >> 4
    if p.version == 4:
        ihl = (data[0] & 0xF) * 4
        p.ihl = ihl
        (_, p.tos, p.total_length, p.ident, fo, p.ttl, p.proto, p.hdr_csum) = \
            struct.unpack_from("!BBHHHBBH", data)
        p.tc, p.hlim = p.tos, p.ttl
        p.df, p.mf, p.frag_offset = bool(fo & 0x4000), bool(fo & 0x2000), (fo & 0x1FFF) * 8
        p.src = str(ipaddress.IPv4Address(data[12:16]))
        p.dst = str(ipaddress.IPv4Address(data[16:20]))
        p.options = data[20:ihl]
        end = p.total_length
        if not inner:
            assert end == len(data), "IPv4 total length %d != %d" % (end, len(data))
        p.truncated = len(data) < end
        p.l4_offset = ihl
        p.l4 = data[ihl:end]
    elif p.version == 6:
        first, p.payload_length, nh, p.hlim = struct.unpack_from("!IHBB", data)
        p.tc, p.flow = (first >> 20) & 0xFF, first & 0xFFFFF
        p.tos, p.ttl = p.tc, p.hlim
        p.src = str(ipaddress.IPv6Address(data[8:24]))
        p.dst = str(ipaddress.IPv6Address(data[24:40]))
        end = 40 + p.payload_length
        if not inner:
            assert end == len(data), "IPv6 payload length %d != %d" % (end, len(data) - 40)
        p.truncated = len(data) < end
        off, p.exts = 40, []
        p.df, p.mf, p.frag_offset = False, False, 0
        while nh in EXT_HEADERS and off + 8 <= len(data):
            if nh == FRAGMENT:
                ln = 8
                fo, ident = struct.unpack_from("!HI", data, off + 2)
                p.frag = dict(ident=ident, offset=fo & 0xFFF8, mf=bool(fo & 1))
                p.mf, p.frag_offset = bool(fo & 1), fo & 0xFFF8
            else:
                ln = (data[off + 1] + 1) * 8
            p.exts.append((nh, data[off:off + ln]))
            nh = data[off]
            off += ln
        p.proto, p.l4_offset = nh, off
        p.l4 = data[off:end]
    else:
        raise ValueError("not an IP packet (version %d)" % p.version)
    if p.frag_offset:
        return p  # non-first fragment: no L4 header
    l4 = p.l4
    if p.proto in (TCP, UDP) and len(l4) >= 8:
        p.sport, p.dport = struct.unpack_from("!HH", l4)
        if p.proto == UDP:
            p.l4_csum = struct.unpack_from("!H", l4, 6)[0]
            p.payload = l4[8:]
        elif len(l4) >= 20:
            p.seq, p.ack = struct.unpack_from("!II", l4, 4)
            p.flags = l4[13]
            p.l4_csum = struct.unpack_from("!H", l4, 16)[0]
            p.payload = l4[(l4[12] >> 4) * 4:]
    elif p.proto in (ICMP, ICMPV6) and len(l4) >= 8:
        p.type, p.code, p.l4_csum = struct.unpack_from("!BBH", l4)
        p.payload = l4[8:]
        is_err = p.type in (ICMP4_ERRORS if p.proto == ICMP else ICMP6_ERRORS)
        if not is_err:
            p.icmp_id, p.icmp_seq = struct.unpack_from("!HH", l4, 4)
        else:
            if p.proto == ICMP:
                p.icmp_length = l4[5]
                unit = 4
                if p.type == 3:
                    p.mtu = struct.unpack_from("!H", l4, 6)[0]
                if p.type == 12:
                    p.pointer = l4[4]
            else:
                unit = 8
                if p.type == 2:
                    p.mtu = struct.unpack_from("!I", l4, 4)[0]
                elif p.type == 4:
                    p.pointer = struct.unpack_from("!I", l4, 4)[0]
                else:
                    p.icmp_length = l4[4]
            body = l4[8:]
            if p.icmp_length:
                p.quoted = body[:p.icmp_length * unit]
                p.ext = body[p.icmp_length * unit:]
            else:
                p.quoted = body
            if len(p.quoted) >= 20 and not inner:
                try:
                    p.inner = parse(p.quoted, inner=True)
                except (ValueError, struct.error, IndexError):
                    p.inner = None
    return p


# ------------------------------------------------------------ verification
def ip_csum_ok(p):
    if not isinstance(p, Packet):
        p = parse(p)
    if p.version == 6:
        return True
    return ones_sum(p.raw[:p.ihl]) == 0xFFFF


def l4_csum_correct(p):
    """The correct L4 checksum value for the packet (unfragmented / whole)."""
    if not isinstance(p, Packet):
        p = parse(p)
    data = bytearray(p.l4)
    off = {TCP: 16, UDP: 6, ICMP: 2, ICMPV6: 2}[p.proto]
    struct.pack_into("!H", data, off, 0)
    if p.proto == ICMP:
        start = 0
    elif p.version == 4:
        start = ones_sum(pseudo4(p.src, p.dst, p.proto, len(data)))
    else:
        start = ones_sum(pseudo6(p.src, p.dst, p.proto, len(data)))
    c = checksum(data, start)
    if p.proto == UDP and c == 0:
        c = 0xFFFF
    return c


def l4_csum_ok(p):
    if not isinstance(p, Packet):
        p = parse(p)
    if p.proto == UDP and p.version == 4 and p.l4_csum == 0:
        return True  # "no checksum" is legal for UDP over IPv4
    return csum_diff(p.l4_csum, l4_csum_correct(p)) == 0


def csum_error(p):
    """How far the packet's L4 checksum is from correct (0 = correct)."""
    if not isinstance(p, Packet):
        p = parse(p)
    return csum_diff(p.l4_csum, l4_csum_correct(p))


def valid(p):
    """Both IP header and L4 checksums are valid."""
    if not isinstance(p, Packet):
        p = parse(p)
    return ip_csum_ok(p) and (p.is_fragment or p.proto not in (TCP, UDP, ICMP, ICMPV6)
                              or l4_csum_ok(p))


def reassemble6(frags):
    """Reassemble parsed-or-raw IPv6 fragments into one IPv6 packet (no fragment
    header; hop limit/traffic class of the first)."""
    frags = [f if isinstance(f, Packet) else parse(f) for f in frags]
    frags.sort(key=lambda f: f.frag_offset)
    first = frags[0]
    assert first.frag_offset == 0 and not frags[-1].mf
    ids = {f.frag["ident"] for f in frags}
    assert len(ids) == 1, ids
    data = b""
    for f in frags:
        assert f.frag_offset == len(data), "gap/overlap at %d" % f.frag_offset
        data += f.l4
    # unfragmentable part = extension headers before the fragment header
    unfrag = b""
    for kind, h in first.exts:
        if kind == FRAGMENT:
            break
        unfrag += h
    hdr = bytearray(first.raw[:40])
    # next header of the last unfragmentable header (or the fixed header) = fragment's nh
    frag_hdr = [h for k, h in first.exts if k == FRAGMENT][0]
    if unfrag:
        unfrag = bytearray(unfrag)
        # find last header in unfrag
        off, last = 0, 0
        while off < len(unfrag):
            last = off
            off += (unfrag[off + 1] + 1) * 8
        unfrag[last] = frag_hdr[0]
        unfrag = bytes(unfrag)
    else:
        hdr[6] = frag_hdr[0]
    struct.pack_into("!H", hdr, 4, len(unfrag) + len(data))
    return bytes(hdr) + unfrag + data


# ------------------------------------------------------------------ RFC 6052
_PLENS = (32, 40, 48, 56, 64, 96)


def _positions(plen):
    assert plen in _PLENS, plen
    return [i for i in range(plen // 8, 16) if i != 8][:4]


def embed(prefix, v4):
    """RFC 6052 IPv4-embedded IPv6 address (str) for prefix 'x::/n' and IPv4 str.
    Bits 64-71 (the u octet) are zero; suffix bits are zero."""
    net = ipaddress.IPv6Network(prefix)
    b = bytearray(net.network_address.packed)
    for i in range(net.prefixlen // 8, 16):
        b[i] = 0
    for pos, byte in zip(_positions(net.prefixlen), _a4(v4)):
        b[pos] = byte
    return str(ipaddress.IPv6Address(bytes(b)))


def extract(prefix, v6):
    """Inverse of embed(): the IPv4 address (str) inside v6 for that prefix."""
    net = ipaddress.IPv6Network(prefix)
    b = _a6(v6)
    return str(ipaddress.IPv4Address(bytes(b[i] for i in _positions(net.prefixlen))))
