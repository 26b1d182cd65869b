"""logging-debug: one log line per packet a worker handles, while the instance's
global logging-debug is on (spec/globals.md: verbose per-packet lines prefixed
`Jool NAT64/<ns-hex>/<instance>:`).

The ring's drain notes each packet in a PacketTrace (rings.pyx: verdict, the
counter of the reason, the first bytes) without leaving the GIL-free loop; after
the drain the worker turns the notes into lines and sends them to the local
syslog socket as RFC 5424 records with MSGID DEBUG. This is a diagnostic mode, as
Jool's is: one line per packet costs far more than translating it, so the notes
are capped per drain and what does not fit is said in one line.
"""

import ipaddress

from jool._fast.stats import COUNTER_NAMES
from jool.control.sessionlog import SEVERITY_DEBUG, SyslogSink, default_syslog_path

VERDICTS = {0: "Translated", 1: "Dropped", 2: "Dropped with an ICMP error",
            3: "Left to the kernel", 4: "Not translated (no room)"}
PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6"}
TRACE_CAPACITY = 1024       # packets noted per drain


def _ports(proto, l4):
    if proto in (6, 17) and len(l4) >= 4:
        return f"#{int.from_bytes(l4[0:2], 'big')}", f"#{int.from_bytes(l4[2:4], 'big')}"
    if proto in (1, 58) and len(l4) >= 2:
        return f" type {l4[0]} code {l4[1]}", ""
    return "", ""


def describe_packet(head):
    """'UDP 2001:db8::5#4711 -> 64:ff9b::c000:205#7007' from a packet's first bytes."""
    if len(head) >= 40 and head[0] >> 4 == 6:
        proto = head[6]
        src, dst = ipaddress.IPv6Address(head[8:24]), ipaddress.IPv6Address(head[24:40])
        l4 = head[40:]
    elif len(head) >= 20 and head[0] >> 4 == 4:
        ihl = (head[0] & 0xF) * 4
        proto = head[9]
        src, dst = ipaddress.IPv4Address(head[12:16]), ipaddress.IPv4Address(head[16:20])
        l4 = head[ihl:] if ihl >= 20 else b""
    else:
        return f"a {len(head)}-byte start that is no IP header"
    sport, dport = _ports(proto, l4)
    name = PROTOCOLS.get(proto, f"protocol {proto}")
    return f"{name} {src}{sport} -> {dst}{dport}"


def describe(verdict, reason, length, head):
    text = f"{VERDICTS.get(verdict, f'verdict {verdict}')}: {describe_packet(head)}"
    text += f" ({length} bytes"
    if reason and 1 <= reason <= len(COUNTER_NAMES):
        text += f", {COUNTER_NAMES[reason - 1]}"
    return text + ")"


class DebugLog:
    """A worker's per-packet lines, to syslog."""

    def __init__(self, instance, netns, path=None):
        self.prefix = f"Jool NAT64/{netns:x}/{instance}: "
        self.sink = SyslogSink(path if path is not None else default_syslog_path())

    def send(self, text):
        """One DEBUG record: the instance's prefix, then text."""
        self.sink.write_plain("DEBUG", self.prefix + text, SEVERITY_DEBUG)

    def write(self, trace):
        """Logs the packets the trace noted since the last call; returns how many."""
        notes = trace.take()
        for verdict, reason, length, head in notes:
            self.send(describe(verdict, reason, length, head))
        if trace.missed:
            self.send(f"{trace.missed} more packets not logged")
            trace.missed = 0
        return len(notes)

    def close(self):
        self.sink.close()
