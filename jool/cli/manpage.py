"""man/jool.8 and man/joold.8, generated from the CLIs' argparse parsers with
argparse-manpage.

`tools/gen-man` writes it; tests/cli/test_manpage.py fails when it is stale.  The
rendering is made reproducible: fixed date, fixed 80-column formatter width.
"""

import os

from jool.cli.jool import VERSION, build_parsers

MAN_DATE = "2024-01-01"

# Sections of jool(8) beyond the options: how each framework gets its traffic.
FRAMEWORK_SECTIONS = [
    {"heading": "NETFILTER INSTANCES", "content": r"""
An instance added with \fB\-\-netfilter\fR (the default) translates on every
interface of its network namespace. Worker processes (one per CPU) read the
interfaces with AF_PACKET rings; what the instance owns (destinations in pool6,
and the pool4 addresses, protocols and ports) is taken out of the kernel's path by
nftables netdev ingress rules in the table \fBnetdev jool_\fIINSTANCE\fR, installed
when the instance starts and removed with it. Everything else stays the kernel's:
ARP and neighbour discovery, the host's own addresses, ports outside pool4.
.PP
What the instance claims but does not translate (Jool hands such packets back to
the host: an echo request to a pool4 address whose identifier no BIB entry maps,
UDP to a pool4 port without a BIB entry, everything while
\fBmanually\-enabled\fR is false) is given back to the kernel through the veth
pair \fBjool\-back\-tx\fR/\fBjool\-back\-rx\fR, made with the instance: frames
sent on the first arrive on the second, which no claim rule watches (reverse path
filtering off on it). The counter JOOL_DP_HANDED_BACK (\fBjool stats display
\-\-userspace\fR) counts them.
"""},
    {"heading": "IPTABLES INSTANCES", "content": r"""
An instance added with \fB\-\-iptables\fR claims nothing by itself: like Jool's
JOOL target, it translates what the firewall hands it. The hand\-over is a netfilter
queue (NFQUEUE). Worker \fIi\fR of the instance reads queue \fIBASE\fR+\fIi\fR, one
worker per CPU; \fIBASE\fR is 64, or the next free range when another
\fB\-\-iptables\fR instance of the namespace uses it, or the value of
\fB\-\-queue\fR (an extension of ours). On a two\-CPU machine:
.PP
.nf
ip6tables \-t mangle \-A PREROUTING \-d 64:ff9b::/96 \\
    \-j NFQUEUE \-\-queue\-balance 64:65
iptables \-t mangle \-A PREROUTING \-d 192.0.2.2 \-p tcp \-\-dport 61001:65535 \\
    \-j NFQUEUE \-\-queue\-balance 64:65
.fi
.PP
(with one CPU, \fB\-\-queue\-num 64\fR). A packet the translator takes is sent
translated and dropped from the kernel's path; a packet it does not translate is
given back with an accept verdict and goes on through the rules. Add
\fB\-\-queue\-bypass\fR to the rule to let the kernel keep the traffic while no
translator listens. The counters JOOL_DP_NFQ_RECEIVED and JOOL_DP_NFQ_ACCEPTED
(dataplane counters, ours) count both.
"""},
]

# How the processes behave when one of them fails.
FAULT_SECTIONS = [
    {"heading": "THE CONTROL PROCESS AND FAULTS", "content": r"""
The first \fBjool instance add\fR of a network namespace starts its control
process (\fBpython \-m jool.control \-\-daemon\fR), which owns the instances,
answers \fBjool\fR, runs the timers and supervises the workers. It exits with the
namespace's last instance. The tables, counters and configuration live in shared
memory (\fB/dev/shm/jool64\-\fINETNS\fB\-*\fR), so:
.IP \(bu 2
a worker that dies is started again within a second, with no session lost;
.IP \(bu 2
a control process that dies (killed, crashed) leaves its workers translating;
the next one, started by any \fBjool\fR command of the namespace while those
workers run (or by a service manager), takes over the instances, their tables and
the running workers from \fB/run/jool\-userspace/instances/\fINETNS\fB.json\fR.
Until then no timer runs (sessions do not expire) and nothing restarts a worker.
When the workers died too, a \fBjool\fR command finds no instance (so that a
health check sees the translator dead); starting the control process itself
still takes the tables over;
.IP \(bu 2
\fBinstance remove\fR and \fBinstance flush\fR stop the workers, remove the
nftables table, the hand\-back pair and the shared memory, whatever the load.
.PP
Only root or a process with CAP_NET_ADMIN may change anything; anyone may run
\fBstats display\fR (as with Jool). Requests are read without blocking the
control process: one must arrive whole within 10 seconds, and an unprivileged
peer's may not exceed 64 KB.
"""},
]

# Where logging-bib and logging-session records go.
LOGGING_SECTIONS = [
    {"heading": "BIB AND SESSION LOGGING", "content": r"""
With \fBlogging\-bib\fR or \fBlogging\-session\fR on, the control process
writes one record per BIB entry or session created and removed, whichever worker
made the change, within a twentieth of a second. Records go to the local syslog
socket (\fB/dev/log\fR, or the path in JOOL_SYSLOG_SOCKET; empty turns syslog
off) in the RFC 5424 format: facility daemon, severity info, APP\-NAME
\fBjool\fR, MSGID \fBBIB\fR or \fBSESSION\fR, the fields as structured
data \fB[jool@32473 instance=... netns=... event=... proto=... src6=... sport6=...
src4=... sport4=... dst6=... dport6=... dst4=... dport4=...]\fR (event:
\fBbib\-created\fR, \fBbib\-removed\fR, \fBsession\-created\fR,
\fBsession\-removed\fR; 32473 is the example enterprise number of RFC 5612),
and as the message the line Jool writes to the kernel log, for example
.PP
.nf
default 2026/11/26 9:5:3 (GMT) \- Mapped 2001:db8::5#4711 to 192.0.2.2#577 (UDP)
.fi
.PP
With \fB\-\-log\-json\fR \fIPATH\fR on the control process (or
JOOL_SESSION_LOG_JSON in the environment of the \fBjool\fR command that starts
it) the same fields are also appended to \fIPATH\fR, one JSON object a line; a
rotated file is reopened. Records written and lost (the event ring holds 16384
events between two drains) are counted as JOOL_LOG_RECORDS and JOOL_LOG_LOST
(\fBjool stats display \-\-userspace\fR).
.PP
With \fBlogging\-debug\fR on, every worker also logs one line per packet of a
\fB\-\-netfilter\fR instance to the same socket (MSGID \fBDEBUG\fR), prefixed
\fBJool NAT64/\fINETNS\-HEX\fB/\fIINSTANCE\fB:\fR, with what became of
it and why, for example
.PP
.nf
Jool NAT64/f0000ad1/default: Left to the kernel: UDP 192.0.2.5#4999 \->
    192.0.2.2#2999 (29 bytes, JSTAT_BIB4_NOT_FOUND)
.fi
.PP
It is a diagnostic mode: at most 1024 lines per batch of packets, the rest
summed up in one line.
"""},
]

# Our extensions for operators: metrics and service units.
OPERATIONS_SECTIONS = [
    {"heading": "METRICS (EXTENSION)", "content": r"""
\fBjool stats display \-\-openmetrics\fR prints the instance's figures in the
OpenMetrics text format: every counter of \fBstats display \-\-userspace\fR per
process (label \fBworker\fR: \fBcontrol\fR, \fB0\fR, \fB1\fR... whose sum is what
\fBstats display\fR shows), named \fBjool_\fR and the counter's name in lower case
without its \fBJSTAT_\fR or \fBJOOL_\fR prefix (\fBJSTAT_RECEIVED6\fR is
\fBjool_received6_total\fR, \fBJSTAT64_TTL\fR \fBjool_64_ttl_total\fR,
\fBJOOL_DP_RX_FRAMES\fR \fBjool_dp_rx_frames_total\fR), the gauges
\fBjool_bib_entries\fR and \fBjool_sessions\fR, the tables' capacity and entries
per protocol, pool4's transport addresses offered and used, the workers and the
session synchronization queue. Every sample has the label \fBinstance\fR.
.PP
The control process serves the same text, for every instance of its namespace, at
\fBhttp://\fIADDRESS\fB:\fIPORT\fB/metrics\fR when started with
\fB\-\-metrics\-listen \fIADDRESS\fB:\fIPORT\fR (\fB[\fIADDRESS\fB]:\fIPORT\fR for
IPv6) or with \fBJOOL_METRICS_LISTEN\fR in its environment (which \fBjool instance
add\fR passes on to the control process it starts). It is off by default and has
no authentication: choose a loopback or management address.
"""},
    {"heading": "SYSTEMD UNITS", "content": r"""
\fBtools/install\-units\fR (opt\-in) installs \fBjool\-control@.service\fR and
\fBjoold@.service\fR, whose instance is the name of a network namespace under
\fB/run/netns\fR. The first runs the control process of that namespace in the
foreground, with \fB/etc/jool/\fINS\fB/control.env\fR and
\fB/etc/jool/\fINS\fB/jool.conf\fR when they exist, and restarts it on failure
(its workers go on meanwhile); the second runs joold with
\fB/etc/jool/\fINS\fB/netsocket.json\fR and \fBmodsocket.json\fR.
"""},
    {"heading": "ENVIRONMENT", "content": r"""
The control process reads these when it starts; \fBjool\fR starts it with its own
environment (a service unit, with \fBcontrol.env\fR).
.TP
\fBJOOL_WORKERS\fR=\fIN\fR
Worker processes per namespace; default one per CPU the control process may run on.
.TP
\fBJOOL_PIN_WORKERS\fR=\fB0\fR
Leave the workers unpinned; by default each is bound to its CPU.
.TP
\fBJOOL_TABLE_CAPACITY\fR=\fIN\fR
Sessions, and BIB entries, each instance's tables hold (default 1048576), in about
125 bytes a session.
.TP
\fBJOOL_SHM_DIR\fR=\fIDIR\fR
Where the tables' shared memory lives (default \fB/dev/shm\fR); every process of
the namespace must see the same value. Large tables look flows up faster on 2 MB
pages: a tmpfs mounted with \fBhuge=always\fR (at 4 M sessions, measured 0.91 of
the rate at 1 k sessions, against 0.88 on 4 KB pages). The segments are advised
MADV_HUGEPAGE, which \fB/dev/shm\fR honours when
\fB/sys/kernel/mm/transparent_hugepage/shmem_enabled\fR says \fBadvise\fR.
.TP
\fBJOOL_GSO\fR=\fB0\fR
Cut super\-frames into segments in user space instead of translating them whole.
.TP
\fBJOOL_METRICS_LISTEN\fR, \fBJOOL_SYSLOG_SOCKET\fR, \fBJOOL_SESSION_LOG_JSON\fR
See METRICS and BIB AND SESSION LOGGING.
.PP
\fBjool\fR itself reads \fBJOOL_CONTROL_SOCKET\fR (the control process's abstract
socket, default \fBjool\-userspace/control\fR), \fBJOOL_CONTROL_COMMAND\fR (the
command that starts a control process; \fBfalse\fR when a service manager starts
it) and \fBJOOL_REGISTRY_DIR\fR (default \fB/run/jool\-userspace/instances\fR).
"""},
]

# Sections of joold(8) beyond the arguments: our extension to netsocket.json.
JOOLD_SECTIONS = [
    {"heading": "SHARED KEY (EXTENSION)", "content": r"""
Jool 4.1.9 authenticates no synchronization datagram: anyone who can send to the
multicast group can install sessions. The member \fBx\-shared\-key\-file\fR of
NETSOCKET_FILE, an extension of ours (the \fBx\-\fR says so; Jool's joold ignores
members it does not know), names a file holding a key that every node shares: its
bytes, surrounding whitespace left out, at least 16 of them. A relative name is
taken from the directory of NETSOCKET_FILE. Make one with
.PP
.nf
head \-c 32 /dev/urandom | base64 > /etc/jool/sync.key
chmod 600 /etc/jool/sync.key
.fi
.PP
and add \fB"x\-shared\-key\-file": "/etc/jool/sync.key"\fR on every node. joold
then appends a 60\-byte trailer to each datagram it sends: the magic
\fBJSS\fR and format version 1 (4 bytes), a sender id drawn at start (8 bytes), a
sequence number (8 bytes), the send time in milliseconds since the Unix epoch
(8 bytes), all big\-endian, and HMAC\-SHA256 of the records and those 28 bytes
(32 bytes). It relays to its instance only datagrams whose trailer verifies and
that are fresh: sent within 60 seconds of the receiver's clock (keep the nodes'
clocks in step, NTP is plenty) and not seen before from that sender. The others
are dropped and counted (\fBjool stats display \-\-userspace\fR):
JOOL_SS_UNSIGNED (no trailer), JOOL_SS_FORGED (a trailer that does not verify:
another key, or altered), JOOL_SS_REPLAYED (stale, or a repeat), and
JOOL_SS_MALFORMED (longer than 2048 bytes, so cut).
.PP
Without the member nothing changes: datagrams are Jool 4.1.9's byte for byte.
A joold without a key that receives a signed datagram cannot check it; it takes
the trailer off and relays the records (Jool 4.1.9 installs them too, skipping the
trailer as a cut record), so a key can be deployed one node at a time.
"""},
    {"heading": "MALFORMED DATAGRAMS", "content": r"""
A received datagram that is empty, not a whole number of 140\-byte records, longer
than 2048 bytes, or holds a record that is not well formed is counted in
JOOL_SS_MALFORMED; its bad records are dropped (JOOL_SS_REJECTED) and its good
ones installed, as Jool 4.1.9 does. Neither joold nor the control process stops.
"""},
]


def render(program="jool"):
    from argparse_manpage.manpage import Manpage
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        if program == "joold":
            from jool.cli.joold import build_parser
            parser = build_parser()
            parser._manpage = JOOLD_SECTIONS
            description = "session synchronization daemon of the userspace NAT64"
        else:
            parser = build_parsers()
            parser._manpage = (FRAMEWORK_SECTIONS + LOGGING_SECTIONS + FAULT_SECTIONS
                               + OPERATIONS_SECTIONS)
            description = "userspace NAT64 (Jool 4.1.9 compatible) configuration client"
        page = Manpage(parser, _data={
            "date": MAN_DATE,
            "project_name": "jool-userspace",
            "version": VERSION,
            "manual_title": "NAT64 administration",
            "manual_section": 8,
            "description": description,
        })
        return str(page)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
