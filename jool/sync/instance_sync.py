"""One instance's end of session synchronization, run by the control process
(spec/joold.md §2, §3, §5; the ss-* globals).

Outgoing: the changed sessions are collected from the shared tables
(jool/_fast/sync.pyx) into a queue of at most ss-capacity records and handed to
the instance's joold over its link as ready-made datagrams of
records_per_datagram(ss-max-payload) records. When to hand them over follows
4.1.9's rules, in order: ss-flush-deadline passed since the last hand-over; else
wait while the daemon has not acknowledged the last one; else ss-flush-asap, or
an advertise was requested; else only whole datagrams. The one deliberate
difference: a full queue is handed over at once, even unacknowledged, and a
change that does not fit waits in the tables (flagged) instead of being lost.
Records are only ever given up when synchronization is switched off with some
still queued, and then they are counted (JOOL_SS_DISCARDED).

Incoming: datagrams relayed by joold are decoded (malformed records counted and
dropped, JOOL_SS_REJECTED, and the datagrams holding them, JOOL_SS_MALFORMED) and
installed; what was installed is remembered as sent, so it is not echoed back to
the peers. Whatever a frame holds, it is counted and never stops the process.
"""

import base64
import ipaddress
import logging
import time

import numpy as np

from jool._fast import sync as kernels
from jool._fast.stats import SYNC_COUNTER_NAMES, SYNC_FIRST_SLOT
from jool.sync import wire

log = logging.getLogger("jool.sync")

COLLECT_SPACING = 0.005         # seconds between passes over the changed-words, at least
COLLECT_COST_FACTOR = 10        # ...and at least this many times a pass's own duration
MAX_LINK_BACKLOG = 4 << 20      # bytes the daemon has not read yet: stop handing over

SLOT = {name: SYNC_FIRST_SLOT + i for i, name in enumerate(SYNC_COUNTER_NAMES)}

# Datagrams joold dropped (or the kernel before it), as its "add" frames report
# them: (field, counter). The signature ones only come from a keyed joold.
FRAME_DROP_COUNTERS = (("lost", "JOOL_SS_LOST_DATAGRAMS"), ("unsigned", "JOOL_SS_UNSIGNED"),
                       ("forged", "JOOL_SS_FORGED"), ("replayed", "JOOL_SS_REPLAYED"),
                       ("malformed", "JOOL_SS_MALFORMED"))


class InstanceSync:
    def __init__(self, tables, counters, values, options):
        """counters: the control process's counter row; values: the instance's
        globals, or a callable giving them (read live); options: a callable
        giving the Translator's options."""
        self.tables = tables
        self.counters = counters
        self._values = values if callable(values) else (lambda: values)
        self.options = options
        capacity = tables.capacity
        self.seq_sent = np.zeros(capacity, dtype=np.uint32)
        self.last_sent = np.zeros(capacity, dtype=np.uint32)
        self.queue = wire.empty(0)
        self.count = 0
        self.link = None
        self.awaiting_ack = False
        self.advertised = False
        self.last_handover = time.monotonic()
        self.next_group = 0
        self.next_collect = 0.0
        self.message_seq = 0
        self._warned_disabled = False

    # ------------------------------------------------------------ settings

    @property
    def values(self):
        return self._values()

    @property
    def enabled(self):
        return bool(self.values.get("ss-enabled"))

    def _capacity(self):
        return max(int(self.values.get("ss-capacity", 512)), 1)

    def _per_datagram(self):
        return wire.records_per_datagram(int(self.values.get("ss-max-payload", 1452)))

    def _timeouts(self):
        o = self.options()
        return (o["tcp_est_timeout"], o["tcp_trans_timeout"], o["udp_timeout"],
                o["icmp_timeout"])

    def _pool6(self):
        net = ipaddress.IPv6Network(self.values["pool6"])
        return net.network_address.packed, net.prefixlen

    def _count(self, name, n=1):
        self.counters[SLOT[name]] += n

    # ------------------------------------------------------------ the daemon's link

    def attach(self, link):
        """A joold subscribed: it takes over from any previous one."""
        if self.link is not None and self.link is not link:
            self.link.close()
        self.link = link
        self.awaiting_ack = False

    def detach(self, link):
        if self.link is link:
            self.link = None
            self.awaiting_ack = False

    def on_frame(self, frame, now_ms):
        """One frame from joold. Whatever it holds, it is counted and the
        process goes on: a frame that is not what the link protocol says
        (docs/control-protocol.md) counts as one malformed datagram."""
        try:
            self._on_frame(frame, now_ms)
        except Exception:
            log.exception("a frame from joold could not be handled")
            self._count("JOOL_SS_MALFORMED")

    def _on_frame(self, frame, now_ms):
        kind = frame.get("type")
        if kind == "ack":
            self.awaiting_ack = False
            self._count("JOOL_SS_SEND_ERRORS", self._frame_count(frame, "failed"))
        elif kind == "add":
            for field, name in FRAME_DROP_COUNTERS:
                self._count(name, self._frame_count(frame, field))
            texts = frame.get("datagrams", [])
            if not isinstance(texts, list):
                log.warning("an add frame whose datagrams are not a list: dropped")
                self._count("JOOL_SS_MALFORMED")
                return
            datagrams = []
            for text in texts:
                try:
                    datagrams.append(base64.b64decode(text, validate=True))
                except (ValueError, TypeError):
                    self._count("JOOL_SS_MALFORMED")
            self.receive(datagrams, now_ms)
        else:
            log.warning("joold sent an unknown frame type %r", kind)
            self._count("JOOL_SS_MALFORMED")

    def _frame_count(self, frame, field):
        """A count joold reports in a frame (0 when absent); anything but a
        plausible count is a malformed frame, counted as such, not added."""
        value = frame.get(field, 0)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 32:
            return value
        log.warning("joold sent %s=%r in a frame: ignored", field, value)
        self._count("JOOL_SS_MALFORMED")
        return 0

    # ------------------------------------------------------------ outgoing

    def pump(self, now_ms, now=None):
        """Collects what changed and hands it over when the rules say so. Called
        by the control process's loop; cheap when nothing changed."""
        if not self.enabled:
            if self.count:
                self._count("JOOL_SS_DISCARDED", self.count)
                self.count = 0
            return
        if self.link is None:
            return                      # changes stay flagged until a joold attaches
        now = time.monotonic() if now is None else now
        capacity = self._capacity()
        if self.count < capacity and now >= self.next_collect:
            self._collect(now_ms, now, capacity)
        if self.count:
            self._maybe_hand_over(now, capacity)

    def _collect(self, now_ms, now, capacity):
        # A pass takes a group of 64 sessions at a time: below capacity, one more
        # always fits, so the queue ends up to 63 records beyond it.
        room = capacity + 63
        if len(self.queue) < room:
            grown = wire.empty(room)
            grown[:self.count] = self.queue[:self.count]
            self.queue = grown
        raw = self.queue.view(np.uint8).reshape(-1, wire.RECORD_SIZE)
        started = time.perf_counter()
        n, group, _scanned = kernels.collect(self.tables, self.seq_sent, self.last_sent,
                                             raw[self.count:room], self._pool6(), now_ms,
                                             self._timeouts(), first_group=self.next_group)
        self.count += n
        self._count("JOOL_SS_QUEUED", n)
        if group >= kernels.groups(self.tables):
            self.next_group = 0
            spent = time.perf_counter() - started
            self.next_collect = now + max(COLLECT_SPACING, COLLECT_COST_FACTOR * spent)
        else:
            self.next_group = group     # the queue filled up mid-pass: go on next time

    def _maybe_hand_over(self, now, capacity):
        if self.link.backlog > MAX_LINK_BACKLOG:
            return
        per = self._per_datagram()
        deadline = int(self.values.get("ss-flush-deadline", 2000)) / 1000.0
        if self.count >= capacity or now - self.last_handover >= deadline:
            take = self.count
        elif self.awaiting_ack:
            return
        elif self.values.get("ss-flush-asap", True) or self.advertised:
            take = self.count
        else:
            take = self.count - self.count % per
            if not take:
                return
        self._hand_over(take, per, now)

    def _hand_over(self, take, per, now):
        records = self.queue[:take]
        datagrams = [base64.b64encode(wire.encode(records[i:i + per])).decode()
                     for i in range(0, take, per)]
        self.message_seq += 1
        try:
            self.link.send({"type": "sync", "seq": self.message_seq, "datagrams": datagrams})
        except Exception as exc:       # LinkClosed: the records stay queued
            log.warning("joold link lost: %s", exc)
            self.detach(self.link)
            return
        self._count("JOOL_SS_SENT", take)
        self.queue[:self.count - take] = self.queue[take:self.count]
        self.count -= take
        self.awaiting_ack = True
        self.last_handover = now

    def advertise(self):
        """The whole session table goes out (spec/joold.md §5, as intended: 4.1.9's
        did not send it), and from now on hand-overs do not wait for whole datagrams."""
        self.seq_sent[:] = 0            # a live session's seqlock word is never 0
        self.last_sent[:] = 0
        kernels.mark_all(self.tables)
        self.next_group = 0
        self.next_collect = 0.0
        self.advertised = True

    # ------------------------------------------------------------ incoming

    def receive(self, datagrams, now_ms):
        records, rejected, malformed = wire.decode_many(datagrams)
        self._count("JOOL_SS_RECEIVED", len(records) + rejected)
        self._count("JOOL_SS_REJECTED", rejected)
        self._count("JOOL_SS_MALFORMED", malformed)
        if not len(records):
            return
        if not self.enabled:
            if not self._warned_disabled:
                log.warning("sessions received while ss-enabled is false: dropped")
                self._warned_disabled = True
            self._count("JOOL_SS_DROPPED", len(records))
            return
        raw = records.view(np.uint8).reshape(-1, wire.RECORD_SIZE)
        installed, updated, collided, no_space, invalid = kernels.install(
            self.tables, raw, now_ms, self._timeouts(), self.seq_sent, self.last_sent)
        self._count("JOOL_SS_INSTALLED", installed)
        self._count("JOOL_SS_UPDATED", updated)
        self._count("JOOL_SS_DROPPED", collided + no_space)
        self._count("JOOL_SS_REJECTED", invalid)
