"""pool4: the IPv4 transport addresses a NAT64 instance masks its clients behind.

Semantics from spec/behaviour.md §3: three independent protocol tables; within a
protocol, sets keyed by packet mark, each with a max-iterations setting; a prefix
expands to one entry per address; ranges of one address in one set fuse when
they overlap or touch; TCP/UDP never use port 0.
"""

import ipaddress
from dataclasses import dataclass, field

PROTOCOLS = ("tcp", "udp", "icmp")
AUTO = None             # max-iterations "auto"
INFINITY = 0            # max-iterations "infinity"


class Pool4Error(ValueError):
    """An invalid pool4 request; `code` is the errno Jool's kernel module answers."""

    def __init__(self, message, code=22):
        super().__init__(message)
        self.code = code


def auto_max_iterations(total):
    """spec §3.4: T >> 7, clamped to [1024, 8192]."""
    return min(max(total >> 7, 1024), 8192)


def fuse_ranges(ranges):
    """Sorted union of (min, max) ranges; touching ranges merge (1-5 + 6-9 = 1-9)."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _subtract(ranges, lo, hi):
    out = []
    for a, b in ranges:
        if b < lo or a > hi:
            out.append((a, b))
            continue
        if a < lo:
            out.append((a, lo - 1))
        if b > hi:
            out.append((hi + 1, b))
    return out


@dataclass
class Pool4Set:
    mark: int
    proto: str
    max_iterations: object = AUTO       # AUTO, INFINITY or a positive int
    ranges: dict = field(default_factory=dict)      # int address -> [(min, max)]

    @property
    def total(self):
        return sum(hi - lo + 1 for rs in self.ranges.values() for lo, hi in rs)

    @property
    def effective_iterations(self):
        if self.max_iterations is AUTO:
            return auto_max_iterations(self.total)
        return self.max_iterations       # INFINITY (0) means no cap

    def entries(self):
        """(address, min, max) ordered by address, then port."""
        return [(addr, lo, hi) for addr in sorted(self.ranges) for lo, hi in self.ranges[addr]]


def _signed32(mark):
    return mark - (1 << 32) if mark >= 1 << 31 else mark


class Pool4:
    def __init__(self):
        self.sets = {}                  # (proto, mark) -> Pool4Set

    def copy(self):
        other = Pool4()
        for key, s in self.sets.items():
            other.sets[key] = Pool4Set(s.mark, s.proto, s.max_iterations,
                                       {a: list(r) for a, r in s.ranges.items()})
        return other

    @staticmethod
    def _addresses(prefix):
        try:
            net = ipaddress.IPv4Network(prefix, strict=True)
        except ValueError as exc:
            raise Pool4Error(f"Invalid IPv4 prefix '{prefix}': {exc}") from None
        if net.num_addresses > 65536:
            raise Pool4Error("A pool4 prefix may hold at most 65536 addresses (/16)")
        first = int(net.network_address)
        return [first + i for i in range(net.num_addresses)]

    @staticmethod
    def _ports(proto, port_min, port_max):
        lo, hi = sorted((int(port_min), int(port_max)))
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535):
            raise Pool4Error("Port numbers must be within 0-65535")
        if proto != "icmp" and lo == 0:
            lo = 1                       # port 0 is never used for TCP or UDP
            if hi == 0:
                return None
        return lo, hi

    def add(self, proto, prefix, port_min=61001, port_max=65535, mark=0, max_iterations=AUTO,
            set_iterations=False):
        """Adds prefix (one entry per address) with a port range to the mark's set.
        set_iterations: the request carried --max-iterations (else the set keeps its own)."""
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise Pool4Error(f"Unknown protocol '{proto}'")
        if not 0 <= mark <= 0xFFFFFFFF:
            raise Pool4Error("The mark must be a 32-bit unsigned integer")
        addresses = self._addresses(prefix)
        ports = self._ports(proto, port_min, port_max)
        key = (proto, mark)
        pset = self.sets.get(key)
        if pset is None:
            pset = self.sets[key] = Pool4Set(mark, proto)
        if set_iterations:
            pset.max_iterations = max_iterations
        if ports is None:
            return
        for addr in addresses:
            pset.ranges[addr] = fuse_ranges(pset.ranges.get(addr, []) + [ports])

    def remove(self, proto, prefix, port_min=0, port_max=65535, mark=0):
        """Subtracts the range from every address of the prefix in the mark's set.
        Returns the (address, min, max) pieces that were removed."""
        proto = proto.lower()
        addresses = self._addresses(prefix)
        lo, hi = sorted((int(port_min), int(port_max)))
        pset = self.sets.get((proto, mark))
        removed = []
        if pset is None:
            return removed
        for addr in addresses:
            if addr not in pset.ranges:
                continue
            for a, b in pset.ranges[addr]:
                if not (b < lo or a > hi):
                    removed.append((addr, max(a, lo), min(b, hi)))
            left = _subtract(pset.ranges[addr], lo, hi)
            if left:
                pset.ranges[addr] = left
            else:
                del pset.ranges[addr]
        if not pset.ranges:
            del self.sets[(proto, mark)]
        return removed

    def flush(self):
        self.sets.clear()

    @property
    def empty(self):
        return not any(s.ranges for s in self.sets.values())

    def contains(self, proto, addr, port):
        """4->6 membership: any set of the protocol, whatever its mark (spec §3.1)."""
        addr = int(ipaddress.IPv4Address(addr))
        for (p, _mark), s in self.sets.items():
            if p == proto and any(lo <= port <= hi for lo, hi in s.ranges.get(addr, [])):
                return True
        return False

    def ordered_sets(self):
        """Display order: by mark descending through a signed 32-bit difference
        (spec §3.1), then protocol as Jool lists its tables."""
        return sorted(self.sets.values(),
                      key=lambda s: (PROTOCOLS.index(s.proto), -_signed32(s.mark)))
