"""The control process's figures in the OpenMetrics text format (an extension of
ours, not in Jool): every counter of `jool stats display --userspace` per instance
and per process, the tables' sizes, pool4's use, the workers and session
synchronization.

Two steps, so that each can be tested alone: snapshot() reads one live Instance
into plain data (no shared memory afterwards), render() turns snapshots into the
text. The same text answers the control operation `metrics.openmetrics` (`jool
stats display --openmetrics`) and the optional HTTP endpoint (MetricsEndpoint,
served from the control process's own selector loop).

Names: a counter NAME of spec/stats.md (or ours) becomes the family
jool_<rest>, <rest> being NAME lower-cased without its JSTAT_/JOOL_ prefix
(JSTAT64_ and JSTAT46_ keep their 64_/46_ so that no two collide): JSTAT_RECEIVED6
-> jool_received6 (sample jool_received6_total), JSTAT64_TTL -> jool_64_ttl,
JOOL_DP_RX_FRAMES -> jool_dp_rx_frames, JOOL_SS_SENT -> jool_ss_sent. The HELP
text starts with NAME, so the mapping can always be read back.
"""

import errno
import ipaddress
import logging
import selectors
import socket
import time

from jool._fast import stats
from jool._fast.stats import COUNTER_NAMES
from jool.cli.stats_doc import EXPLANATIONS
from jool.control.counters import GAUGES, ROWS

log = logging.getLogger("jool.control")

PROTOCOLS = ("tcp", "udp", "icmp")
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"



def _extension_groups():
    """(first slot, names) of every group of our own counters stats.py declares
    (DATAPLANE_, SYNC_... each a *_COUNTER_NAMES with its *_FIRST_SLOT): a group
    added there is in the metrics without a change here."""
    groups = []
    for attr in dir(stats):
        if attr.endswith("_COUNTER_NAMES") and attr != "COUNTER_NAMES":
            first = getattr(stats, attr[:-len("COUNTER_NAMES")] + "FIRST_SLOT")
            groups.append((first, getattr(stats, attr)))
    return sorted(groups)


# Counters that count (not the two gauges), Jool's then ours, with their slot
# in a counter row.
COUNTER_SLOTS = tuple(
    [(name, i) for i, name in enumerate(COUNTER_NAMES, 1) if name not in GAUGES]
    + [(name, first + i) for first, names in _extension_groups()
       for i, name in enumerate(names)])


def metric_name(counter):
    """The family name of a counter of `jool stats display` (module docstring)."""
    for prefix, replacement in (("JSTAT64_", "64_"), ("JSTAT46_", "46_"),
                                ("JSTAT_", ""), ("JOOL_", "")):
        if counter.startswith(prefix):
            return "jool_" + replacement + counter[len(prefix):].lower()
    raise ValueError(f"not a counter name: {counter}")


# ---------------------------------------------------------------------------
# Reading an instance
# ---------------------------------------------------------------------------

def counter_rows(block, worker_count):
    """[(worker label, {counter: value})] of a CounterBlock: the control process
    ("control", row 0), each worker of the pool ("0", "1"... rows 1...), and any
    other row that holds counts (a pool that had more workers before): together
    they sum to exactly what `jool stats display` shows."""
    array = block.array
    slots = [slot for _, slot in COUNTER_SLOTS]
    rows = []
    for row in range(ROWS):
        values = array[row]
        if row > worker_count and not any(values[slot] for slot in slots):
            continue
        label = "control" if row == 0 else str(row - 1)
        rows.append((label, {name: int(values[slot]) for name, slot in COUNTER_SLOTS}))
    return rows


def pool4_ports(translator):
    """{protocol: transport addresses pool4 offers} (every mark together)."""
    ports = dict.fromkeys(PROTOCOLS, 0)
    for _mark, proto, _addr, low, high, _iterations, _auto in translator.pool4_entries():
        ports[proto.lower()] += high - low + 1
    return ports


def snapshot(inst):
    """One Instance (jool/control/instance.py) as plain data for render()."""
    totals = {name: value for name, value in inst.stats(userspace=False)}   # refreshes gauges
    workers = inst.workers
    worker_count = workers.count if workers is not None else 0
    sync = inst._sync           # read, never created: it costs 8 bytes per session
    values = inst.values
    return {
        "name": inst.name,
        "framework": inst.framework,
        "pool6": str(values.get("pool6") or ""),
        "rows": counter_rows(inst.counters, worker_count),
        "gauges": {name: totals[name] for name in GAUGES},
        "capacity": {"bib": inst.tables.bib_capacity, "sessions": inst.tables.capacity},
        "entries": inst.tables.counts_by_protocol(),
        "pool4_ports": pool4_ports(inst.translator),
        "workers": {
            "configured": worker_count,
            "running": sum(1 for p in (workers.procs if workers else []) if p is not None
                           and p.is_alive()),
            "restarts": workers.restarts if workers is not None else 0,
        },
        "sync": {
            "enabled": int(bool(values.get("ss-enabled"))),
            "attached": int(sync is not None and sync.link is not None),
            "queued": sync.count if sync is not None else 0,
            "capacity": int(values.get("ss-capacity", 512)),
            "awaiting_ack": int(sync is not None and bool(sync.awaiting_ack)),
        },
    }


# ---------------------------------------------------------------------------
# The text
# ---------------------------------------------------------------------------

def _escape(text):
    return str(text).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Families:
    """Families in the order first declared; OpenMetrics wants each family's
    samples together, whatever the instance they belong to."""

    def __init__(self):
        self.order = []
        self.kinds = {}
        self.helps = {}
        self.samples = {}

    def declare(self, family, kind, help_text):
        if family not in self.kinds:
            self.order.append(family)
            self.kinds[family] = kind
            self.helps[family] = help_text
            self.samples[family] = []

    def add(self, family, labels, value):
        suffix = {"counter": "_total", "info": "_info"}.get(self.kinds[family], "")
        self.samples[family].append((family + suffix, labels, value))

    def text(self):
        out = []
        for family in self.order:
            out.append(f"# TYPE {family} {self.kinds[family]}\n")
            out.append(f"# HELP {family} {_escape(self.helps[family])}\n")
            for sample, labels, value in self.samples[family]:
                if labels:
                    pairs = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
                    out.append(f"{sample}{{{pairs}}} {int(value)}\n")
                else:
                    out.append(f"{sample} {int(value)}\n")
        out.append("# EOF\n")
        return "".join(out)


def render(snapshots, refused_requests=0):
    """The OpenMetrics text of the snapshots (snapshot()) and of the control process."""
    fam = _Families()
    snapshots = list(snapshots)
    for name, _slot in COUNTER_SLOTS:
        family = metric_name(name)
        fam.declare(family, "counter", f"{name}: {EXPLANATIONS.get(name, name)}")
        for snap in snapshots:
            for worker, counts in snap["rows"]:
                fam.add(family, (("instance", snap["name"]), ("worker", worker)), counts[name])
    for name in GAUGES:
        family = metric_name(name)
        fam.declare(family, "gauge", f"{name}: {EXPLANATIONS.get(name, name)}")
        for snap in snapshots:
            fam.add(family, (("instance", snap["name"]),), snap["gauges"][name])

    def per_instance(family, kind, help_text, value_of):
        fam.declare(family, kind, help_text)
        for snap in snapshots:
            fam.add(family, (("instance", snap["name"]),), value_of(snap))

    fam.declare("jool_instance", "info", "The instance's framework and pool6.")
    for snap in snapshots:
        fam.add("jool_instance", (("instance", snap["name"]), ("framework", snap["framework"]),
                                  ("pool6", snap["pool6"])), 1)
    fam.declare("jool_table_capacity", "gauge",
                "Entries the instance's shared tables can hold (JOOL_TABLE_CAPACITY).")
    fam.declare("jool_table_entries", "gauge", "Entries held, by table and protocol.")
    for snap in snapshots:
        for table in ("bib", "sessions"):
            fam.add("jool_table_capacity", (("instance", snap["name"]), ("table", table)),
                    snap["capacity"][table])
    for snap in snapshots:
        for proto in PROTOCOLS:
            bib, sessions = snap["entries"][proto]
            for table, value in (("bib", bib), ("sessions", sessions)):
                fam.add("jool_table_entries", (("instance", snap["name"]), ("table", table),
                                               ("protocol", proto)), value)
    fam.declare("jool_pool4_ports", "gauge",
                "Transport addresses (address and port, or ICMP identifier) pool4 offers "
                "(0 with an empty pool4: the host's own addresses are used).")
    fam.declare("jool_pool4_ports_used", "gauge",
                "Transport addresses in use: one per BIB entry, static ones included.")
    for snap in snapshots:
        for proto in PROTOCOLS:
            labels = (("instance", snap["name"]), ("protocol", proto))
            fam.add("jool_pool4_ports", labels, snap["pool4_ports"][proto])
            fam.add("jool_pool4_ports_used", labels, snap["entries"][proto][0])
    per_instance("jool_workers", "gauge", "Dataplane worker processes the instance runs.",
                 lambda s: s["workers"]["configured"])
    per_instance("jool_workers_running", "gauge", "Worker processes alive right now.",
                 lambda s: s["workers"]["running"])
    per_instance("jool_worker_restarts", "counter",
                 "Dead workers restarted by this control process.",
                 lambda s: s["workers"]["restarts"])
    per_instance("jool_sync_enabled", "gauge", "1 when ss-enabled is true.",
                 lambda s: s["sync"]["enabled"])
    per_instance("jool_sync_joold_attached", "gauge", "1 while a joold carries the sessions.",
                 lambda s: s["sync"]["attached"])
    per_instance("jool_sync_queue_records", "gauge",
                 "Session records queued for joold, not handed over yet.",
                 lambda s: s["sync"]["queued"])
    per_instance("jool_sync_queue_capacity", "gauge", "ss-capacity: the queue's size.",
                 lambda s: s["sync"]["capacity"])
    per_instance("jool_sync_awaiting_ack", "gauge",
                 "1 while joold has not acknowledged the last hand-over.",
                 lambda s: s["sync"]["awaiting_ack"])
    fam.declare("jool_control_refused_requests", "counter",
                "Control requests refused: malformed, too slow, too many at once.")
    fam.add("jool_control_refused_requests", (), refused_requests)
    return fam.text()


# ---------------------------------------------------------------------------
# The HTTP endpoint
# ---------------------------------------------------------------------------

MAX_REQUEST = 8192          # a scrape's request line and headers fit many times
EXCHANGE_TIMEOUT = 10.0     # a client must send its request and read the answer within it
MAX_CLIENTS = 16            # connections served at once; more are closed at once
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error"}


def parse_listen(text):
    """"ADDRESS:PORT" or "[IPv6 ADDRESS]:PORT" -> (family, address, port).
    Raises ValueError with the reason."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r}: an IPv6 address goes as [ADDRESS]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{text!r}: expected ADDRESS:PORT ([ADDRESS]:PORT for IPv6)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return family, str(address), int(port)


class _Exchange:
    """One HTTP connection: its request as it arrives, then the answer as the
    client takes it."""

    def __init__(self, conn):
        self.conn = conn
        self.deadline = time.monotonic() + EXCHANGE_TIMEOUT
        self.request = bytearray()
        self.answer = None          # memoryview of what is left to send


class MetricsEndpoint:
    """GET /metrics over HTTP/1.x, answered from the control process's selector
    loop without ever blocking it: non-blocking accept, reads and writes, a cap on
    connections, request size and time. Every answer closes its connection."""

    def __init__(self, listen, render_text):
        family, address, port = parse_listen(listen)
        self.render_text = render_text
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((address, port))
            self.sock.listen(MAX_CLIENTS)
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self.address = self.sock.getsockname()[:2]
        self.clients = {}
        self.selector = None

    def register(self, selector):
        self.selector = selector
        selector.register(self.sock, selectors.EVENT_READ, "metrics")

    def on_event(self, fileobj, events):
        if fileobj is self.sock:
            self._accept()
            return
        exchange = self.clients.get(fileobj)
        if exchange is None:
            return
        try:
            if exchange.answer is None:
                self._read(exchange)
            else:
                self._write(exchange)
        except OSError:
            self._drop(exchange)

    def expire(self):
        now = time.monotonic()
        for exchange in list(self.clients.values()):
            if now >= exchange.deadline:
                self._drop(exchange)

    def close(self):
        for exchange in list(self.clients.values()):
            self._drop(exchange)
        if self.selector is not None:
            try:
                self.selector.unregister(self.sock)
            except (KeyError, ValueError):
                pass
        self.sock.close()

    # -------------------------------------------------------------- internals

    def _accept(self):
        while True:
            try:
                conn, _peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:          # EMFILE and the like: next time
                log.warning("metrics endpoint: accept failed: %s", exc)
                return
            if len(self.clients) >= MAX_CLIENTS:
                conn.close()
                continue
            conn.setblocking(False)
            exchange = _Exchange(conn)
            self.clients[conn] = exchange
            self.selector.register(conn, selectors.EVENT_READ, "metrics")

    def _read(self, exchange):
        while True:
            try:
                chunk = exchange.conn.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not chunk:
                self._drop(exchange)            # gone before asking anything whole
                return
            exchange.request += chunk
            head_end = max(exchange.request.find(b"\r\n\r\n"), exchange.request.find(b"\n\n"))
            if head_end >= 0:
                self._answer(exchange, *self._route(exchange.request[:head_end]))
                return
            if len(exchange.request) > MAX_REQUEST:
                self._answer(exchange, 400, "request too long\n")
                return

    def _route(self, head):
        """(status, body, is HEAD) for a request's head."""
        try:
            method, target, version = bytes(head).split(b"\n", 1)[0].decode("ascii").split()
        except (UnicodeDecodeError, ValueError):
            return 400, "malformed request line\n", False
        if not version.startswith("HTTP/1."):
            return 400, "HTTP/1.x only\n", False
        if method not in ("GET", "HEAD"):
            return 405, "GET or HEAD only\n", False
        if target.split("?", 1)[0] != "/metrics":
            return 404, "the metrics are at /metrics\n", False
        try:
            return 200, self.render_text(), method == "HEAD"
        except Exception:
            log.exception("metrics endpoint: rendering failed")
            return 500, "the metrics could not be rendered (see the log)\n", False

    def _answer(self, exchange, status, body, head_only=False):
        payload = body.encode("utf-8")
        content_type = CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"
        head = (f"HTTP/1.1 {status} {REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                + ("Allow: GET, HEAD\r\n" if status == 405 else "")
                + "Connection: close\r\n\r\n").encode("ascii")
        exchange.answer = memoryview(head + (b"" if head_only else payload))
        self.selector.modify(exchange.conn, selectors.EVENT_WRITE, "metrics")
        self._write(exchange)

    def _write(self, exchange):
        while exchange.answer:
            try:
                sent = exchange.conn.send(exchange.answer)
            except (BlockingIOError, InterruptedError):
                return                          # the selector says when it may go on
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.debug("metrics endpoint: send failed: %s", exc)
                self._drop(exchange)
                return
            exchange.answer = exchange.answer[sent:]
        self._drop(exchange)

    def _drop(self, exchange):
        self.clients.pop(exchange.conn, None)
        try:
            self.selector.unregister(exchange.conn)
        except (KeyError, ValueError):
            pass
        exchange.conn.close()
