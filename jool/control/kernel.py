"""Living beside the kernel: what the translator claims, the kernel must not see.

The workers read frames from AF_PACKET taps, which run before netdev ingress. A frame
the translator owns is therefore still delivered, answered or forwarded by the host
unless something removes it; that something is one nftables table per instance,
``netdev jool_<instance>``, with one ingress base chain per interface that jumps to a
shared chain of drop rules:

* IPv6 whose destination is inside pool6;
* IPv4 to a pool4 address (any protocol table) that is ICMP, of any type;
* IPv4 TCP/UDP whose (destination address, destination port) is inside that
  protocol's pool4 ranges;
* IPv4 non-first fragments to a pool4 address (they carry no ports; the translator
  reassembles them);
* with an empty pool4 (spec/behaviour.md §3.5), on the namespace's own addresses:
  TCP/UDP destination ports 61001-65535, ICMP echo identifiers 61001-65535, and ICMP
  errors quoting a TCP/UDP source port or an echo identifier in that range. Non-first
  fragments to those addresses are left to the kernel: the addresses are the host's
  own, so the kernel only ever delivers them locally, and stealing them would break the
  host's own fragmented traffic (the worker's BPF filter still gives it a copy).

Everything else (ARP, ND, the host's own traffic, ports outside pool4) stays the
kernel's. Addresses and ports live in nftables interval sets, so the rule count does
not grow with pool4. Every rule counts what it took (``nft list table``).

jool/dataplane/bpf.py makes the same decision for the workers' sockets; the two
must agree.
"""

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess

from jool.config.pool4 import fuse_ranges  # noqa: F401 (re-exported for bpf.py)

NFT_TIMEOUT = 30
EMPTY_POOL4_PORTS = (61001, 65535)
ICMP4_ERROR_TYPES = ("destination-unreachable", "source-quench", "redirect",
                     "time-exceeded", "parameter-problem")
RECEIVE_OFFLOADS = ("generic-receive-offload", "large-receive-offload", "rx-gro-hw")
SEND_OFFLOADS = ("generic-segmentation-offload", "tcp-segmentation-offload")
OFFLOADS = RECEIVE_OFFLOADS + SEND_OFFLOADS


def gso_enabled():
    """Super-frames translated once and handed on whole (workers read virtio-net
    headers, egress writes them); JOOL_GSO=0 turns it off: super-frames are then
    cut into segments in user space, and TSO/GSO go off on the interfaces too."""
    return os.environ.get("JOOL_GSO", "1") != "0"


class KernelRulesError(RuntimeError):
    """nft (or ethtool) is missing, or refused what it was asked."""


# ------------------------------------------------------------------ naming
def _identifier(text):
    """An nftables identifier for text: [A-Za-z0-9_] kept, the rest replaced; a short
    hash of the original is appended when anything was replaced (no collisions)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", text)
    if clean != text or not clean:
        clean += "_" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return clean


def table_name(instance):
    return "jool_" + _identifier(instance)


def _check_ifname(name):
    if not name or len(name) > 15 or any(c in name for c in '"\\/ \t\n:') \
            or not name.isprintable():
        raise ValueError(f"Invalid interface name {name!r}")
    return name


# ------------------------------------------------------------------ pool folding
# fuse_ranges (jool.config.pool4): ranges that overlap or touch become one.
def _address_runs(addresses):
    """Sorted integer addresses -> [(first, last)] runs of consecutive addresses."""
    return fuse_ranges((a, a) for a in addresses)


def pool4_groups(pool4_entries):
    """Normalised pool4: {proto: [(first_addr, last_addr, ((pmin, pmax), ...))]}
    where addresses are ints, each group is a run of consecutive addresses sharing
    the same fused port ranges, and groups are sorted and disjoint. Also returns the
    sorted address runs of the union of all protocols."""
    per_proto = {"tcp": {}, "udp": {}, "icmp": {}}
    for proto, addr, pmin, pmax in pool4_entries:
        proto = proto.lower()
        if proto not in per_proto:
            raise ValueError(f"Unknown pool4 protocol {proto!r}")
        a = int(ipaddress.IPv4Address(addr))
        lo, hi = sorted((int(pmin), int(pmax)))
        if not (0 <= lo and hi <= 65535):
            raise ValueError(f"Port range {pmin}-{pmax} outside 0-65535")
        per_proto[proto].setdefault(a, []).append((lo, hi))
    groups = {}
    everything = set()
    for proto, table in per_proto.items():
        fused = {a: tuple(fuse_ranges(r)) for a, r in table.items()}
        everything.update(fused)
        out = []
        for a in sorted(fused):
            if out and out[-1][1] + 1 == a and out[-1][2] == fused[a]:
                out[-1] = (out[-1][0], a, fused[a])
            else:
                out.append((a, a, fused[a]))
        groups[proto] = out
    return groups, _address_runs(sorted(everything))


def pool6_prefixes(pool6):
    """pool6 as a list of IPv6Network: None, one prefix, or several."""
    if pool6 is None:
        return []
    if isinstance(pool6, (str, ipaddress.IPv6Network)):
        pool6 = [pool6]
    return [ipaddress.IPv6Network(p, strict=False) for p in pool6 if p is not None]


def empty_addresses(addresses):
    """Sorted integer IPv4 address runs of the empty-pool4 local addresses."""
    return _address_runs(sorted({int(ipaddress.IPv4Address(a)) for a in addresses}))


# ------------------------------------------------------------------ the ruleset
def _v4(a):
    return str(ipaddress.IPv4Address(a))


def _addr_element(first, last):
    return _v4(first) if first == last else f"{_v4(first)}-{_v4(last)}"


def _port_element(lo, hi):
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _set(lines, name, type_, elements):
    lines.append(f"\tset {name} {{")
    lines.append(f"\t\ttype {type_}")
    lines.append("\t\tflags interval")
    lines.append("\t\telements = { " + ",\n\t\t\t     ".join(elements) + " }")
    lines.append("\t}")


def claim_ruleset(instance, interfaces, pool6, pool4_entries, empty_pool4_addresses=()):
    """The nft script (text) of the instance's table. empty_pool4_addresses (the
    namespace's universe-scope IPv4 addresses) only count while pool4_entries is
    empty, as in Jool (spec §3.5)."""
    table = table_name(instance)
    prefixes = pool6_prefixes(pool6)
    groups, union = pool4_groups(pool4_entries)
    local = [] if any(groups.values()) else empty_addresses(empty_pool4_addresses)
    devices = [_check_ifname(i) for i in interfaces]

    lines = [f"table netdev {table} {{"]
    for proto in ("tcp", "udp"):
        if groups[proto]:
            _set(lines, f"pool4_{proto}", "ipv4_addr . inet_service",
                 [f"{_addr_element(a, b)} . {_port_element(lo, hi)}"
                  for a, b, ranges in groups[proto] for lo, hi in ranges])
    if union:
        _set(lines, "pool4_addr", "ipv4_addr", [_addr_element(a, b) for a, b in union])
    if local:
        _set(lines, "local4", "ipv4_addr", [_addr_element(a, b) for a, b in local])

    rules = []
    if len(prefixes) == 1:
        rules.append(f"ip6 daddr {prefixes[0]} counter drop")
    elif prefixes:
        rules.append("ip6 daddr { " + ", ".join(map(str, prefixes)) + " } counter drop")
    if union:
        rules.append("ip daddr @pool4_addr ip protocol icmp counter drop")
        rules.append("ip daddr @pool4_addr ip frag-off & 0x1fff != 0 counter drop")
    for proto in ("tcp", "udp"):
        if groups[proto]:
            rules.append(f"ip daddr . {proto} dport @pool4_{proto} counter drop")
    if local:
        ports = "%d-%d" % EMPTY_POOL4_PORTS
        first = EMPTY_POOL4_PORTS[0]
        errors = "icmp type { " + ", ".join(ICMP4_ERROR_TYPES) + " } @th,64,8 0x45"
        rules += [
            f"ip daddr @local4 tcp dport {ports} counter drop",
            f"ip daddr @local4 udp dport {ports} counter drop",
            f"ip daddr @local4 icmp type {{ echo-reply, echo-request }} icmp id {ports} "
            "counter drop",
            # An error quoting one of our packets: inner IPv4 header without options,
            # inner TCP/UDP source port (or echo identifier) in the range.
            f"ip daddr @local4 {errors} @th,136,8 {{ 6, 17 }} @th,224,16 {first}-65535 "
            "counter drop",
            f"ip daddr @local4 {errors} @th,136,8 1 @th,256,16 {first}-65535 counter drop",
        ]
    lines.append("\tchain owned {")
    lines += [f"\t\t{r}" for r in rules]
    lines.append("\t}")
    for dev in devices:
        lines.append(f"\tchain ingress_{_identifier(dev)} {{")
        lines.append(f'\t\ttype filter hook ingress device "{dev}" priority 0; '
                     "policy accept;")
        lines.append("\t\tjump owned")
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ running nft
def _prefix(netns):
    return [] if netns is None else ["ip", "netns", "exec", netns]


def _tool(tool):
    """The tool's path: PATH first, then the sbin directories a service's PATH may lack."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        raise KernelRulesError(f"'{tool}' was not found: install the {_PACKAGE[tool]} "
                               "package")
    return found


def _run(tool, args, netns=None, stdin=None):
    cmd = _prefix(netns) + [_tool(tool)] + list(args)
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=NFT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise KernelRulesError(f"'{' '.join(cmd)}' did not finish in {NFT_TIMEOUT} s") \
            from None
    if done.returncode != 0:
        raise KernelRulesError(f"'{' '.join(cmd)}' failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


_PACKAGE = {"nft": "nftables", "ethtool": "ethtool", "ip": "iproute2", "sh": "dash"}


def install(instance, interfaces, pool6, pool4_entries, empty=(), netns=None):
    """Replaces the instance's table in one nft transaction: the old table (if any)
    goes and the new one arrives together, so no packet sees neither or both.
    netns: run in that named namespace (ip netns exec) instead of the current one."""
    table = table_name(instance)
    script = (f"table netdev {table} {{}}\n"          # creates it if missing, so that
              f"delete table netdev {table}\n"       # this delete cannot fail
              + claim_ruleset(instance, interfaces, pool6, pool4_entries, empty))
    _run("nft", ["-f", "-"], netns, stdin=script)
    return script


# ---------------------------------------------------------------- hand-back link
#
# What a --netfilter instance claims but its translator leaves alone (Jool's
# "untranslatable": a ping to the pool4 address with no BIB entry, UDP to the host
# on a pool4 port nobody maps, manually-enabled false...) was removed from
# the kernel's path by the claim rules. Workers give it back through a veth pair:
# frames sent on HANDBACK_TX arrive on HANDBACK_RX, which no claim rule watches,
# and the kernel delivers, answers or forwards them as usual (weak host model: the
# destination address may belong to another interface; rp_filter off on it).

HANDBACK_TX = "jool-back-tx"
HANDBACK_RX = "jool-back-rx"
HANDBACK_LINKS = (HANDBACK_TX, HANDBACK_RX)


def create_handback(netns=None):
    """The namespace's hand-back pair, made once (MTU 65535: reassembled datagrams
    go back whole)."""
    if HANDBACK_TX in interfaces(netns):
        return
    _run("ip", ["link", "add", HANDBACK_TX, "mtu", "65535", "type", "veth", "peer", "name",
                HANDBACK_RX, "mtu", "65535"], netns)
    for name in HANDBACK_LINKS:
        _sysctl(f"net/ipv4/conf/{name}/rp_filter", "0", netns)
        _sysctl(f"net/ipv6/conf/{name}/accept_ra", "0", netns)
        _sysctl(f"net/ipv6/conf/{name}/accept_dad", "0", netns)
        _run("ip", ["link", "set", name, "up"], netns)


def remove_handback(netns=None):
    if HANDBACK_TX in interfaces(netns):
        _run("ip", ["link", "del", HANDBACK_TX], netns)


def _sysctl(path, value, netns=None):
    if netns is None:
        try:
            with open(f"/proc/sys/{path}", "w") as f:
                f.write(value)
        except OSError:
            pass
    else:
        _run("sh", ["-c", f"echo {value} > /proc/sys/{path}"], netns)


def remove(instance, netns=None):
    """Deletes the instance's table; returns whether there was one."""
    if not present(instance, netns):
        return False
    table = table_name(instance)
    _run("nft", ["-f", "-"], netns,
         stdin=f"table netdev {table} {{}}\ndelete table netdev {table}\n")
    return True


def present(instance, netns=None):
    table = table_name(instance)
    out = _run("nft", ["list", "tables", "netdev"], netns)
    return any(line.split() == ["table", "netdev", table] for line in out.splitlines())


def listing(instance, netns=None):
    """`nft list table` of the instance (with its counters), for operators and tests."""
    return _run("nft", ["list", "table", "netdev", table_name(instance)], netns)


# ------------------------------------------------------------------ interfaces
def _features(ifname, netns):
    """{feature: (on, fixed)} from `ethtool -k`."""
    out = _run("ethtool", ["-k", ifname], netns)
    feats = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\w-]+):\s+(on|off)(\s+\[fixed\])?", line)
        if m:
            feats[m.group(1)] = (m.group(2) == "on", bool(m.group(3)))
    return feats


def disable_offloads(ifname, netns=None, keep_send=False):
    """Turns GRO/LRO (receive super-frames) and, unless keep_send, GSO/TSO off on
    ifname. Returns the features that were on and are now off, for the log.
    keep_send: the workers hand super-frames on whole, so the device may carry
    them (veth passes them to its peer as they are)."""
    _check_ifname(ifname)
    before = _features(ifname, netns)
    features = RECEIVE_OFFLOADS if keep_send else OFFLOADS
    wanted = [f for f in features if f in before and before[f][0] and not before[f][1]]
    if not wanted:
        return []
    args = ["-K", ifname]
    for f in wanted:
        args += [f, "off"]
    try:
        _run("ethtool", args, netns)
    except KernelRulesError:
        # Some drivers refuse part of a combined request; try one feature at a time.
        for f in wanted:
            try:
                _run("ethtool", ["-K", ifname, f, "off"], netns)
            except KernelRulesError:
                pass
    after = _features(ifname, netns)
    return [f for f in wanted if f in after and not after[f][0]]


def interfaces(netns=None):
    """The namespace's interfaces, lo excluded, in index order."""
    if netns is not None:
        out = subprocess.run(["ip", "-j", "-n", netns, "link", "show"], capture_output=True,
                             text=True, timeout=NFT_TIMEOUT, check=True).stdout
        links = [(link["ifindex"], link["ifname"]) for link in json.loads(out)]
    else:
        try:
            from pyroute2 import IPRoute
            with IPRoute() as ipr:
                links = [(msg["index"], msg.get_attr("IFLA_IFNAME")) for msg in ipr.get_links()]
        except ImportError:                 # sysfs: right when mounted by this namespace
            links = []
            for name in os.listdir("/sys/class/net"):
                with open(f"/sys/class/net/{name}/ifindex") as f:
                    links.append((int(f.read()), name))
    return [name for _, name in sorted(links) if name != "lo"]


def attachable(names):
    """The interfaces a --netfilter instance translates on: all but the hand-back pair."""
    return [name for name in names if name not in HANDBACK_LINKS]
