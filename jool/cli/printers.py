"""Table and CSV renderings of the display operations (spec/cli.md §2, stats.md §1).

Every function returns the text to print (lines joined, trailing newline included,
or "" when nothing is printed); stderr diagnostics of name resolution go through
the `warn` callable.
"""

import socket
import sys

PROTO_LABEL = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}
TCP_STATES = ("ESTABLISHED", "V4_INIT", "V6_INIT", "V4_FIN_RCV", "V6_FIN_RCV",
              "V4_FIN_V6_FIN_RCV", "TRANS")


def _text(lines):
    return "".join(line + "\n" for line in lines)


def _border(*widths):
    return "+" + "+".join("-" * (w + 2) for w in widths) + "+"


# ---------------------------------------------------------------- instance

def instance_table(rows, csv=False, headers=True):
    """rows: [(netns_id, name, framework)]."""
    if csv:
        out = ["Namespace,Name,Framework"] if headers else []
        out += [f"{ns & 0xFFFFFFFF:x},{name},{fw}" for ns, name, fw in rows]
        return _text(out)
    border = _border(18, 15, 9)
    out = []
    if headers:
        out += [border, f"| {'Namespace':>18} | {'Name':>15} | {'Framework':>9} |"]
    out.append(border)
    for ns, name, fw in rows:
        if fw not in ("netfilter", "iptables"):
            fw = "unknown"
        out.append(f"| {ns & 0xFFFFFFFF:18x} | {name:>15} | {fw:>9} |")
    out.append(border)
    return _text(out)


# ---------------------------------------------------------------- pool4

POOL4_WIDTHS = (10, 5, 18, 15, 11)


def pool4_table(rows, csv=False, headers=True):
    """rows: [[mark, "TCP", addr, min, max, iterations or None, fixed]] in display
    order (mark descending, then address and port)."""
    if csv:
        out = (["Mark,Protocol,Address,Min port,Max port,Iterations,Iterations fixed"]
               if headers else [])
        for mark, proto, addr, low, high, iterations, fixed in rows:
            iters = "infinite" if iterations is None else str(iterations)
            is_fixed = 1 if (fixed or iterations is None) else 0
            out.append(f"{mark},{proto},{addr},{low},{high},{iters},{is_fixed}")
        return _text(out)
    border = _border(*POOL4_WIDTHS)
    out = []
    if headers:
        out += [border, f"| {'Mark':>10} | {'Proto':>5} | {'Max iterations':>18} | "
                        f"{'Address':>15} | {'Ports':>11} |"]
    if not rows:
        out.append(border)
    last = None
    for mark, proto, addr, low, high, iterations, fixed in rows:
        if (mark, proto) != last:
            out.append(border)
            if iterations is None:
                iters, kind = "Infinite", "fixed"
            else:
                iters, kind = str(iterations), ("fixed" if fixed else "auto")
            out.append(f"| {mark:>10} | {proto:>5} | {iters:>10} ({kind:>5}) | "
                       f"{addr:>15} | {low:>5}-{high:>5} |")
            last = (mark, proto)
        else:
            out.append(f"| {'':>10} | {'':>5} | {'':>10}  {'':>5}  | "
                       f"{addr:>15} | {low:>5}-{high:>5} |")
    out.append(border)
    return _text(out)


# ---------------------------------------------------------------- names

class Resolver:
    """Reverse lookups of (address, port) pairs (spec/cli.md §3)."""

    def __init__(self, numeric, proto, warn=None):
        self.numeric = numeric
        self.proto = proto
        self.warn = warn or (lambda msg: sys.stderr.write(msg + "\n"))

    def __call__(self, addr, port):
        if self.numeric:
            return addr, str(port)
        flags = 0
        if self.proto == "icmp":
            flags |= socket.NI_NUMERICSERV
        elif self.proto == "udp":
            flags |= socket.NI_DGRAM
        sockaddr = (addr, port, 0, 0) if ":" in addr else (addr, port)
        try:
            host, serv = socket.getnameinfo(sockaddr, flags)
        except (socket.gaierror, OSError) as exc:
            reason = exc.strerror if getattr(exc, "strerror", None) else str(exc)
            self.warn(f"Error: getnameinfo failed: {reason}")
            return addr, str(port)
        return host, serv


# ---------------------------------------------------------------- bib

def bib_table(rows, proto, resolve, csv=False, headers=True):
    """rows: [[addr6, port6, addr4, port4, static]] ordered by IPv4 address."""
    label = PROTO_LABEL[proto]
    out = []
    if csv:
        if headers:
            out.append("Protocol,IPv6 Address,IPv6 L4-ID,IPv4 Address,IPv4 L4-ID,Static?")
        for addr6, port6, addr4, port4, static in rows:
            host, serv = resolve(addr6, port6)
            out.append(f"{label},{host},{serv},{addr4},{port4},{1 if static else 0}")
        return _text(out)
    for addr6, port6, addr4, port4, static in rows:
        host, serv = resolve(addr6, port6)
        kind = "Static" if static else "Dynamic"
        out.append(f"[{kind} {label}] {addr4}#{port4} - {host}#{serv}")
    return _text(out)


# ---------------------------------------------------------------- session

SESSION_SEPARATOR = "-" * 33


def format_expiry(ms):
    """H:MM:SS plus .mmm when the milliseconds are not zero (hours unpadded)."""
    ms = max(0, int(ms))
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}:{minutes:02d}:{seconds:02d}"
    if millis:
        text += f".{millis:03d}"
    return text


def _session_fields(s, proto):
    """(src6, sport6, dst6, dport6, src4, sport4, dst4, dport4) with ICMP's rule:
    both IPv4 sides show the pool4-side id, both IPv6 sides the IPv6-side id."""
    sport6, dport6 = s["sport6"], s["dport6"]
    sport4, dport4 = s["sport4"], s["dport4"]
    if proto == "icmp":
        dport6, dport4 = sport6, sport4
    return s["src6"], sport6, s["dst6"], dport6, s["src4"], sport4, s["dst4"], dport4


def _state(s):
    state = s.get("state")
    return state if state in TCP_STATES else "UNKNOWN"


def session_table(rows, proto, resolve, csv=False, headers=True):
    label = PROTO_LABEL[proto]
    out = []
    if csv:
        if headers:
            out.append("Protocol,IPv6 Remote Address,IPv6 Remote L4-ID,IPv6 Local Address,"
                       "IPv6 Local L4-ID,IPv4 Local Address,IPv4 Local L4-ID,"
                       "IPv4 Remote Address,IPv4 Remote L4-ID,Expires in,State")
        for s in rows:
            src6, sport6, dst6, dport6, src4, sport4, dst4, dport4 = _session_fields(s, proto)
            h6, p6 = resolve(src6, sport6)
            h4, p4 = resolve(dst4, dport4)
            fields = [label, h6, p6, dst6, str(dport6), src4, str(sport4), h4, p4,
                      format_expiry(s["expires_in_ms"])]
            if proto == "tcp":
                fields.append(_state(s))
            out.append(",".join(fields))
        return _text(out)
    out.append(SESSION_SEPARATOR)
    for s in rows:
        src6, sport6, dst6, dport6, src4, sport4, dst4, dport4 = _session_fields(s, proto)
        prefix = f"({_state(s)}) " if proto == "tcp" else ""
        out.append(f"{prefix}Expires in {format_expiry(s['expires_in_ms'])}")
        h4, p4 = resolve(dst4, dport4)
        h6, p6 = resolve(src6, sport6)
        out.append(f"Remote: {h4}#{p4}\t{h6}#{p6}")
        out.append(f"Local: {src4}#{sport4}\t{dst6}#{dport6}")
        out.append(SESSION_SEPARATOR)
    return _text(out)


# ---------------------------------------------------------------- stats

def stats_table(rows, show_all=False, explain=False, csv=False, headers=True,
                explanations=None):
    """rows: [[NAME, value]] for all counters in ID order."""
    explanations = explanations or {}
    out = []
    if csv and headers:
        out.append("Stat,Value,Explanation" if explain else "Stat,Value")
    for name, value in rows:
        if not show_all and not value:
            continue
        if csv:
            if explain:
                out.append(f'{name},{value},"{explanations.get(name, "")}"')
            else:
                out.append(f"{name},{value}")
        else:
            out.append(f"{name}: {value}")
            if explain:
                out.append(explanations.get(name, ""))
                out.append("")
    return _text(out)
