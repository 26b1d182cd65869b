"""The classic BPF filter of a worker's ETH_P_ALL packet socket.

Only frames the translator owns reach the ring: frames of packet type HOST (never
the host's own outgoing frames, broadcasts or frames for other hosts) that are

* IPv6 with the destination inside pool6;
* IPv4 to a pool4 address (any protocol table) that is ICMP, of any type;
* IPv4 TCP/UDP whose destination address and port fall in that protocol's pool4;
* IPv4 non-first fragments to a pool4 address (no ports; the translator reassembles);
* with an empty pool4 (spec/behaviour.md §3.5), to the namespace's own addresses:
  TCP/UDP ports 61001-65535, ICMP echo identifiers 61001-65535, ICMP errors quoting
  (in an inner header without options) a TCP/UDP source port or echo identifier in
  that range, and non-first fragments.

jool/control/kernel.py drops the same frames at netdev ingress so the kernel does not
also handle them. Frames are Ethernet (14-byte header, no VLAN tag).

Membership in a set of address or port intervals compiles to a binary search over
the sorted intervals, so a long pool4 costs a few comparisons per frame, and ranges
are merged per address and protocol (consecutive addresses with the same ranges
share one interval) so programs stay far below the kernel's 4096 instructions.
"""

import ctypes
import itertools
import socket
import struct

from jool.control.kernel import (EMPTY_POOL4_PORTS, empty_addresses, fuse_ranges,
                                 pool4_groups, pool6_prefixes)

# Instruction classes and fields (linux/filter.h, linux/bpf_common.h)
BPF_LD, BPF_LDX, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x01, 0x04, 0x05, 0x06
BPF_AND = 0x50
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MSH = 0x00, 0x20, 0x40, 0xa0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_K = 0x00

SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
PACKET_HOST = 0
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
BPF_MAXINSNS = 4096

ACCEPT = 0x40000            # the whole frame, up to 256 KB
REJECT = 0

ETH_HLEN = 14
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86dd
IPV6_DST = ETH_HLEN + 24
IPV4_FRAG = ETH_HLEN + 6
IPV4_PROTO = ETH_HLEN + 9
IPV4_DST = ETH_HLEN + 16
ICMP4_ERRORS = (3, 4, 5, 11, 12)


class ProgramTooLong(ValueError):
    pass


# ------------------------------------------------------------------ assembler
class _Label:
    __slots__ = ("name",)
    _ids = itertools.count()

    def __init__(self, name="L"):
        self.name = f"{name}{next(self._ids)}"

    def __repr__(self):
        return self.name


class _Asm:
    """Instructions with symbolic forward jumps. A conditional jump's targets are
    labels or None (the next instruction); assemble() resolves them, routing any
    target beyond the 8-bit jt/jf reach through `ja` trampolines."""

    def __init__(self):
        self.items = []             # [code, jt, jf, k] lists, or _Label markers

    def label(self, name="L"):
        return _Label(name)

    def place(self, label):
        self.items.append(label)

    def op(self, code, k=0):
        self.items.append([code, None, None, k & 0xFFFFFFFF])

    def jump(self, cond, k, jt=None, jf=None):
        self.items.append([BPF_JMP | cond | BPF_K, jt, jf, k & 0xFFFFFFFF])

    def ja(self, target):
        self.items.append([BPF_JMP | BPF_JA, None, None, target])

    def ret(self, value):
        self.op(BPF_RET | BPF_K, value)

    def _positions(self, items):
        pos, where = 0, {}
        for it in items:
            if isinstance(it, _Label):
                where[it] = pos
            else:
                pos += 1
        return where

    def assemble(self):
        items = list(self.items)
        while True:
            # A conditional jump whose target is out of reach (255) gets a trampoline
            # right after it:  jxx k, T, F  ->  jxx k, t1, F ; t1: ja T ; c:
            # Only the same jump's trampolines ever come between it and them, so a
            # side, once fixed, stays near. Insertions may push other jumps out of
            # reach: repeat until none is.
            where = self._positions(items)
            out, pc, changed = [], 0, False
            for it in items:
                if isinstance(it, _Label):
                    out.append(it)
                    continue
                code, jt, jf, k = it
                far = [code & 0x07 == BPF_JMP and code != BPF_JMP | BPF_JA and t is not None
                       and where[t] - pc - 1 > 255 for t in (jt, jf)]
                pc += 1
                if not any(far):
                    out.append(it)
                    continue
                changed = True
                new, extra, cont = [code, jt, jf, k], [], _Label("c")
                for side in (1, 2):
                    if far[side - 1]:
                        tramp = _Label("t")
                        extra += [tramp, [BPF_JMP | BPF_JA, None, None, new[side]]]
                        new[side] = tramp
                    elif new[side] is None:
                        new[side] = cont
                out += [new] + extra + [cont]
            items = out
            if not changed:
                break
        where = self._positions(items)
        out, pc = [], 0
        for it in items:
            if isinstance(it, _Label):
                continue
            code, jt, jf, k = it
            if code == BPF_JMP | BPF_JA:
                k = where[k] - pc - 1
            elif code & 0x07 == BPF_JMP:
                jt = 0 if jt is None else where[jt] - pc - 1
                jf = 0 if jf is None else where[jf] - pc - 1
                assert 0 <= jt <= 255 and 0 <= jf <= 255
            out.append((code, jt or 0, jf or 0, k))
            pc += 1
        return _peephole(out)


def _peephole(program):
    """Drops `ja 0` (a jump to the next instruction), fixing the offsets over them."""
    while True:
        keep = [not (c == BPF_JMP | BPF_JA and k == 0) for c, _, _, k in program]
        if all(keep):
            return program
        # new_at[i]: the new index of the first kept instruction at or after i
        new_at, n = [0] * (len(program) + 1), sum(keep)
        new_at[len(program)] = n
        for i in range(len(program) - 1, -1, -1):
            new_at[i] = new_at[i + 1] - 1 if keep[i] else new_at[i + 1]
        out = []
        for i, (c, jt, jf, k) in enumerate(program):
            if not keep[i]:
                continue
            me = new_at[i]
            if c == BPF_JMP | BPF_JA:
                k = new_at[i + 1 + k] - me - 1
            elif c & 0x07 == BPF_JMP:
                jt = new_at[i + 1 + jt] - me - 1
                jf = new_at[i + 1 + jf] - me - 1
            out.append((c, jt, jf, k))
        program = out


# ------------------------------------------------------------------ generation
def _dispatch(asm, items, acc=None, rej=None):
    """A holds a value. items: sorted, disjoint [(lo, hi, target)], target ACCEPT or
    a function f(acc, rej) emitting the code for a hit, which ends in jumps to the
    labels acc (accept) or rej (reject); a value in no interval is rejected.
    A binary search down to chains of at most three intervals. Without acc/rej each
    chain ends in its own two returns, so jumps stay short."""
    if len(items) > 3:
        mid = len(items) // 2
        right = asm.label("r")
        asm.jump(BPF_JGE, items[mid][0], right, None)
        _dispatch(asm, items[:mid], acc, rej)
        asm.place(right)
        _dispatch(asm, items[mid:], acc, rej)
        return
    own = acc is None
    if own:
        acc, rej = asm.label("acc"), asm.label("rej")
    for lo, hi, target in items:
        if target == ACCEPT:
            if lo == hi:
                asm.jump(BPF_JEQ, lo, acc, None)
            else:
                if lo > 0:
                    asm.jump(BPF_JGE, lo, None, rej)   # below it: below every later one
                asm.jump(BPF_JGT, hi, None, acc)
            continue
        nxt = asm.label("n")
        if lo == hi:
            asm.jump(BPF_JEQ, lo, None, nxt)
        else:
            if lo > 0:
                asm.jump(BPF_JGE, lo, None, rej)
            asm.jump(BPF_JGT, hi, nxt, None)
        target(acc, rej)
        asm.place(nxt)
    asm.ja(rej)
    if own:
        asm.place(rej)
        asm.ret(REJECT)
        asm.place(acc)
        asm.ret(ACCEPT)


def _prefix_match(asm, prefix, accept, miss):
    """Jump to accept when the IPv6 destination is inside prefix, else to miss."""
    data = prefix.network_address.packed
    nbits = prefix.prefixlen
    off = 0
    while nbits > 0:
        size = 4 if nbits >= 32 else 2 if nbits >= 16 else 1
        width = {4: BPF_W, 2: BPF_H, 1: BPF_B}[size]
        value = int.from_bytes(data[off:off + size], "big")
        asm.op(BPF_LD | width | BPF_ABS, IPV6_DST + off)
        used = min(nbits, size * 8)
        if used < size * 8:            # a partial byte (prefix not a multiple of 8)
            mask = ((1 << used) - 1) << (size * 8 - used)
            asm.op(BPF_ALU | BPF_AND | BPF_K, mask)
            value &= mask
        asm.jump(BPF_JEQ, value, None, miss)
        off += size
        nbits -= used
    asm.ja(accept)


def _generate(prefixes, groups, union, local, precision=2):
    """precision 2: exact; 1: TCP/UDP to a pool4 address of the protocol, any port;
    0: any IPv4 to a pool4 address."""
    asm = _Asm()
    accept, reject = asm.label("accept"), asm.label("reject")
    v6, v4 = asm.label("v6"), asm.label("v4")

    def ports(offset, ranges):
        """A hit whose 16-bit field at offset past the IPv4 header (X = 4*IHL) must
        also be inside ranges."""
        def emit(acc, rej):
            asm.op(BPF_LD | BPF_H | BPF_IND, ETH_HLEN + offset)
            _dispatch(asm, [(lo, hi, ACCEPT) for lo, hi in ranges], acc, rej)
        return emit

    asm.op(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE)
    asm.jump(BPF_JEQ, PACKET_HOST, None, reject)
    asm.op(BPF_LD | BPF_H | BPF_ABS, 12)
    asm.jump(BPF_JEQ, ETH_P_IPV6, v6 if prefixes else reject, None)
    asm.jump(BPF_JEQ, ETH_P_IP, v4 if (union or local) else reject, reject)

    if prefixes:
        asm.place(v6)
        for n, prefix in enumerate(prefixes):
            miss = reject if n == len(prefixes) - 1 else asm.label("p6")
            _prefix_match(asm, prefix, accept, miss)
            if miss is not reject:
                asm.place(miss)

    if (union or local) and precision < 0:
        # Last resort: every IPv4 frame of the host.
        asm.place(v4)
        asm.ret(ACCEPT)
    elif union and precision == 0:
        # Coarsest: any IPv4 to a pool4 address.
        asm.place(v4)
        asm.op(BPF_LD | BPF_W | BPF_ABS, IPV4_DST)
        _dispatch(asm, [(a, b, ACCEPT) for a, b in union])
    elif union or local:
        empty_range = [EMPTY_POOL4_PORTS]
        frag, icmp, tcp, udp = (asm.label(n) for n in ("frag", "icmp", "tcp", "udp"))
        asm.place(v4)
        asm.op(BPF_LD | BPF_H | BPF_ABS, IPV4_FRAG)
        # Without the empty pool4, a non-first fragment passes when its destination is
        # a pool4 address, exactly like ICMP: one test serves both.
        asm.jump(BPF_JSET, 0x1fff, frag if local else icmp, None)
        asm.op(BPF_LDX | BPF_B | BPF_MSH, ETH_HLEN)
        asm.op(BPF_LD | BPF_B | BPF_ABS, IPV4_PROTO)
        asm.jump(BPF_JEQ, 1, icmp, None)
        asm.jump(BPF_JEQ, 6, tcp if (groups["tcp"] or local) else reject, None)
        asm.jump(BPF_JEQ, 17, udp if (groups["udp"] or local) else reject, reject)

        if local:
            # Non-first fragments to the namespace's own addresses.
            asm.place(frag)
            asm.op(BPF_LD | BPF_W | BPF_ABS, IPV4_DST)
            _dispatch(asm, [(a, b, ACCEPT) for a, b in local])

        # ICMP: any type to a pool4 address; with the empty pool4, identifiers.
        def icmp_local(acc, rej):
            echo, error = asm.label("echo"), asm.label("error")
            inner_icmp, inner_l4 = asm.label("inner_icmp"), asm.label("inner_l4")
            asm.op(BPF_LD | BPF_B | BPF_IND, ETH_HLEN)                   # type
            asm.jump(BPF_JEQ, 0, echo, None)
            asm.jump(BPF_JEQ, 8, echo, None)
            for n, t in enumerate(ICMP4_ERRORS):
                last = n == len(ICMP4_ERRORS) - 1
                asm.jump(BPF_JEQ, t, error, rej if last else None)
            asm.place(echo)
            ports(4, empty_range)(acc, rej)                              # identifier
            asm.place(error)
            asm.op(BPF_LD | BPF_B | BPF_IND, ETH_HLEN + 8)               # inner version/IHL
            asm.jump(BPF_JEQ, 0x45, None, rej)
            asm.op(BPF_LD | BPF_B | BPF_IND, ETH_HLEN + 8 + 9)           # inner protocol
            asm.jump(BPF_JEQ, 1, inner_icmp, None)
            asm.jump(BPF_JEQ, 6, inner_l4, None)
            asm.jump(BPF_JEQ, 17, inner_l4, rej)
            asm.place(inner_l4)
            ports(8 + 20, empty_range)(acc, rej)                         # source port
            asm.place(inner_icmp)
            ports(8 + 20 + 4, empty_range)(acc, rej)                     # echo identifier

        asm.place(icmp)
        asm.op(BPF_LD | BPF_W | BPF_ABS, IPV4_DST)
        _dispatch(asm, sorted([(a, b, ACCEPT) for a, b in union]
                              + [(a, b, icmp_local) for a, b in local], key=lambda it: it[:2]))

        # TCP and UDP: destination address, then destination port.
        for proto, label in (("tcp", tcp), ("udp", udp)):
            if not (groups[proto] or local):
                continue
            asm.place(label)
            asm.op(BPF_LD | BPF_W | BPF_ABS, IPV4_DST)
            if precision == 2:
                items = [(a, b, ports(2, ranges)) for a, b, ranges in groups[proto]]
            else:                   # coarse: any port of a pool4 address of the protocol
                items = [(a, b, ACCEPT)
                         for a, b in fuse_ranges((a, b) for a, b, _ in groups[proto])]
            items += [(a, b, ports(2, empty_range)) for a, b in local]
            _dispatch(asm, sorted(items, key=lambda it: it[:2]))

    asm.place(reject)
    asm.ret(REJECT)
    asm.place(accept)
    asm.ret(ACCEPT)
    return asm.assemble()


def owned_filter(pool6, pool4_entries, empty_pool4_addresses=()):
    """The filter program, a list of (code, jt, jf, k). pool6: a prefix (str or
    IPv6Network), several, or None. pool4_entries: [(proto, "A.B.C.D", min, max)].
    empty_pool4_addresses count only while pool4_entries is empty (spec §3.5)."""
    prefixes = pool6_prefixes(pool6)
    groups, union = pool4_groups(pool4_entries)
    local = [] if any(groups.values()) else empty_addresses(empty_pool4_addresses)
    for precision in (2, 1, 0, -1):
        # Too fragmented for the exact test, the filter widens: the surplus reaches the
        # translator, which finds it outside pool4 and leaves it alone, while the
        # kernel, whose nftables rules stay exact, still handles it.
        program = _generate(prefixes, groups, union, local, precision)
        if len(program) <= BPF_MAXINSNS:
            break
    if len(program) > BPF_MAXINSNS:
        raise ProgramTooLong(f"The BPF filter would take {len(program)} instructions "
                             f"(the kernel accepts {BPF_MAXINSNS}); pool4 is too fragmented")
    return program


# ------------------------------------------------------------------ the socket
_INSN = struct.Struct("=HBBI")


def pack(program):
    """The program as a struct sock_filter array."""
    return b"".join(_INSN.pack(c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in program)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def attach(sock, program):
    """SO_ATTACH_FILTER on sock (the kernel copies the program). To miss no frame and
    take no stray one, attach before binding the socket to ETH_P_ALL."""
    raw = pack(program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(program), ctypes.cast(buf, ctypes.POINTER(_SockFilter)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
