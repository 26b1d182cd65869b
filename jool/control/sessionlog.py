"""BIB and session logging (globals logging-bib and logging-session).

The tables append an event to their ring whenever a BIB entry or a session is
created or removed, whichever process made the change (tables.pyx emit_event).
While an instance has logging on, the control process drains that ring a few
times a second and writes one record per event:

* to the local syslog socket (/dev/log, where journald or rsyslog listens), in the
  RFC 5424 format: facility daemon, severity info, APP-NAME "jool", MSGID "BIB" or
  "SESSION", the fields as structured data (SD-ID jool@32473: 32473 is the private
  enterprise number RFC 5612 reserves for examples; we have none of our own) and,
  as the message, the line Jool 4.1.9 writes to the kernel log (spec/behaviour.md
  §6), so that what greps Jool's logs greps ours;
* optionally as JSON lines to a file (`python -m jool.control --log-json PATH` or
  JOOL_SESSION_LOG_JSON), reopened when it is rotated away.

Events the ring lost (it holds DEFAULT_EVENT_CAPACITY) and records a destination
refused are counted as JOOL_LOG_LOST; records written as JOOL_LOG_RECORDS.
"""

import json
import os
import socket
import time

from jool._fast.stats import LOG_FIRST_SLOT
from jool.control.instance import now_ms

RECORDS_SLOT = LOG_FIRST_SLOT
LOST_SLOT = LOG_FIRST_SLOT + 1
DRAIN_PERIOD = 0.05             # seconds between drains while logging is on
DRAIN_LIMIT = 1 << 16           # events taken per drain (the ring holds 16 Ki)
FACILITY_DAEMON = 3
SEVERITY_INFO = 6
SEVERITY_DEBUG = 7
SD_ID = "jool@32473"
RECONNECT_EVERY = 1.0


def default_syslog_path():
    """JOOL_SYSLOG_SOCKET, or /dev/log; an empty value turns syslog off."""
    return os.environ.get("JOOL_SYSLOG_SOCKET", "/dev/log")


def jool_time(wall):
    """Jool's log time: GMT, fields not zero-padded (spec/behaviour.md §6)."""
    t = time.gmtime(wall)
    return f"{t.tm_year}/{t.tm_mon}/{t.tm_mday} {t.tm_hour}:{t.tm_min}:{t.tm_sec}"


def rfc3339(wall):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + \
        f".{int(wall * 1_000_000) % 1_000_000:06d}Z"


def jool_message(instance, kind, record, wall):
    """The line Jool 4.1.9 logs for the event."""
    head = f"{instance} {jool_time(wall)} (GMT) - "
    if kind.startswith("bib-"):
        verb = "Mapped" if kind == "bib-created" else "Forgot"
        return (f"{head}{verb} {record['src6']}#{record['sport6']} to "
                f"{record['src4']}#{record['sport4']} ({record['proto']})")
    verb = "Added session" if kind == "created" else "Forgot session"
    return (f"{head}{verb} {record['src6']}#{record['sport6']}|{record['dst6']}#"
            f"{record['dport6']}|{record['src4']}#{record['sport4']}|{record['dst4']}#"
            f"{record['dport4']}|{record['proto']}")


def structured_record(instance, netns, kind, record, wall):
    """The event as a flat dict: what JSON lines carry and syslog's structured data."""
    event = kind if kind.startswith("bib-") else f"session-{kind}"
    out = {"time": rfc3339(wall), "instance": instance, "netns": f"{netns:x}",
           "event": event, "proto": record["proto"],
           "src6": record["src6"], "sport6": record["sport6"],
           "src4": record["src4"], "sport4": record["sport4"]}
    if kind.startswith("bib-"):
        out["static"] = record["static"]
    else:
        out.update(dst6=record["dst6"], dport6=record["dport6"],
                   dst4=record["dst4"], dport4=record["dport4"])
        if record.get("state"):
            out["state"] = record["state"]
    return out


def _sd_value(value):
    """RFC 5424 §6.3.3: '"', '\\' and ']' are escaped inside PARAM-VALUE."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(fields):
    """A record's fields as one RFC 5424 SD-ELEMENT (its time is the header's)."""
    params = " ".join(f'{name}="{_sd_value(value)}"' for name, value in fields.items()
                      if name != "time")
    return f"[{SD_ID} {params}]"


def rfc5424_line(msgid, timestamp, structured, message, hostname, pid,
                 severity=SEVERITY_INFO):
    """RFC 5424 §6: PRI, VERSION 1, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID,
    STRUCTURED-DATA ("-" for none), MSG."""
    return (f"<{FACILITY_DAEMON * 8 + severity}>1 {timestamp} {hostname} jool {pid} "
            f"{msgid} {structured} {message}")


class SyslogSink:
    """Datagrams to the local syslog socket; never blocks the control process."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.retry_at = 0.0
        self.hostname = socket.gethostname() or "-"
        self.pid = os.getpid()

    def _connect(self):
        if self.sock is not None:
            return True
        if time.monotonic() < self.retry_at:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            self.retry_at = time.monotonic() + RECONNECT_EVERY
            return False
        self.sock = sock
        return True

    def write(self, fields, message):
        """A BIB or session record; True when it left."""
        msgid = "BIB" if fields["event"].startswith("bib-") else "SESSION"
        return self._send(rfc5424_line(msgid, fields["time"], structured_data(fields), message,
                                       self.hostname, self.pid))

    def write_plain(self, msgid, message, severity):
        """A record without structured data, timed now; True when it left."""
        return self._send(rfc5424_line(msgid, rfc3339(time.time()), "-", message,
                                       self.hostname, self.pid, severity))

    def _send(self, line):
        if not self._connect():
            return False
        try:
            self.sock.send(line.encode())
            return True
        except BlockingIOError:
            return False                # the receiver is behind: the record is lost
        except OSError:                 # it went away: reconnect later
            self.close()
            self.retry_at = time.monotonic() + RECONNECT_EVERY
            return False

    def flush(self):
        pass

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class JsonLinesSink:
    """One JSON object a line, appended; reopened when the file is rotated away."""

    def __init__(self, path):
        self.path = path
        self.file = None
        self.inode = None

    def _open(self):
        try:
            st = os.stat(self.path)
            if self.file is not None and st.st_ino == self.inode:
                return True
        except FileNotFoundError:
            pass
        self.close()
        try:
            # Client addresses and ports: readable by its owner only when we make it.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self.file = os.fdopen(fd, "a", encoding="utf-8")
            self.inode = os.fstat(self.file.fileno()).st_ino
            return True
        except OSError:
            self.file = None
            return False

    def write(self, fields, message):
        if self.file is None and not self._open():
            return False
        try:
            self.file.write(json.dumps(fields, separators=(",", ":")) + "\n")
            return True
        except OSError:
            self.close()
            return False

    def flush(self):
        if self.file is not None:
            try:
                self.file.flush()
            except OSError:
                self.close()
            self._open()                # rotated meanwhile: the next drain writes anew

    def close(self):
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None


class SessionLogger:
    """Drains one instance's event ring into the sinks while logging is on."""

    def __init__(self, sinks, netns, log_from_start=False):
        self.sinks = sinks
        self.netns = netns
        self.was_on = log_from_start    # a taken-over instance logs what it missed
        self.lost_seen = None
        self.next_drain = 0.0

    def wanted(self, values):
        return bool(values.get("logging-bib") or values.get("logging-session"))

    def pump(self, inst, force=False):
        """Writes the records of the events since the last call; returns how many."""
        values = inst.values
        on = self.wanted(values)
        translator = inst.translator
        counters = inst.counters.row(0)
        if not on:
            self.was_on = False
            return 0
        if not self.was_on:             # just switched on: only what happens from now
            translator.skip_events()
            self.lost_seen = inst.tables.events_lost
            self.was_on = True
            return 0
        monotonic = time.monotonic()
        if not force and monotonic < self.next_drain:
            return 0
        self.next_drain = monotonic + DRAIN_PERIOD
        lost = inst.tables.events_lost
        if self.lost_seen is not None and lost > self.lost_seen:
            counters[LOST_SLOT] += lost - self.lost_seen
        self.lost_seen = lost
        events = translator.session_events(DRAIN_LIMIT)
        # The clock read after the drain: no event is younger than it, so the
        # wrapping difference below is an age, never a negative one seen as 49 days.
        now = now_ms()
        wall_now = time.time()
        written = 0
        for kind, record in events:
            if kind == "updated":
                continue
            if kind.startswith("bib-"):
                if not values.get("logging-bib"):
                    continue
            elif not values.get("logging-session"):
                continue
            age = (now - record["time"]) & 0xFFFFFFFF
            if age >= 1 << 31:            # stamped ahead of our clock: now
                age = 0
            wall = wall_now - age / 1000.0
            fields = structured_record(inst.name, self.netns, kind, record, wall)
            message = jool_message(inst.name, kind, record, wall)
            for sink in self.sinks:
                if sink.write(fields, message):
                    counters[RECORDS_SLOT] += 1
                else:
                    counters[LOST_SLOT] += 1
            written += 1
        for sink in self.sinks:
            sink.flush()
        return written


def sinks_from_environment(json_path=None):
    """The destinations the control process logs to: syslog unless
    JOOL_SYSLOG_SOCKET is empty, JSON lines when a path is given."""
    sinks = []
    path = default_syslog_path()
    if path:
        sinks.append(SyslogSink(path))
    json_path = json_path or os.environ.get("JOOL_SESSION_LOG_JSON")
    if json_path:
        sinks.append(JsonLinesSink(json_path))
    return sinks
