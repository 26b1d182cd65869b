"""A dataplane worker: one process per CPU, started and supervised by the control
process (jool/control/workers.py).

It attaches to its instance's published configuration (jool/control/configblock.py),
the shared tables and the control process's network mirror
(jool/control/netmirror.py), opens one TPACKET_V3 ring per interface joined to the
instance's fanout group, and loops: wait for frames, let the ring drain them
through the translator and out through the egress (GIL released, no Python per
packet), then, between wakeups, resolve the destinations the egress queued
(jool/dataplane/nexthop.py) and pick up a new configuration or mirror generation
(routes, neighbours, MTUs).
"""

import logging
import os
import signal

log = logging.getLogger("jool.worker")

POLL_MS = 20               # also how soon a new configuration is picked up
ORPHAN_CHECK_MS = 1000     # how often a worker whose control process died looks for its instance
DROPS_EVERY_MS = 500       # how often the rings' kernel drop counts are collected
DP_RX_DROPPED_SLOT = 81    # counters.pxd JDP_RX_DROPPED


class Worker:
    def __init__(self, config_name, counters_name, index, interfaces, fanout_group,
                 net_name=None, queue_base=None):
        from jool._fast.defrag import Reassembler
        from jool._fast.egress import Egress
        from jool._fast.rings import RxRing
        from jool.dataplane.nexthop import Resolver
        from jool._fast.tables import Tables
        from jool.control.configblock import ConfigBlock, build_translator
        from jool.control.counters import CounterBlock

        self.index = index
        self.interfaces = list(interfaces)
        self.block = ConfigBlock.attach(config_name)
        self.generation, doc = self.block.read()
        self.tables = Tables.attach(doc["tables"])
        self.counter_block = CounterBlock.attach(counters_name)
        self.resolver = Resolver(net_name)
        self.resolver.changed()
        self.own4, self.own6 = self.resolver.view.local_addresses()
        self.translator = self._build(doc, build_translator)
        self.trace = self.debug = None
        self._set_debug(doc)
        self._acknowledge()
        self.tx = Egress(counters=self.counter_block.row(self.index + 1),
                         cache=net_name is not None)
        self.reassembler = Reassembler()
        if queue_base is None:
            self._attach_hand_back()
        self.bpf = doc.get("bpf")
        self.queues = []
        if queue_base is not None:
            # --iptables: what the operator's NFQUEUE rules hand over, no rings.
            from jool._fast.nfqueue import NfQueue
            self.rings = []
            self.queues = [NfQueue(queue_base + index)]
        else:
            # A fanout group belongs to one device: interface k of every worker
            # joins group fanout_group + k. Light traffic retires a block per
            # millisecond however few frames it holds, so many small blocks: 128
            # of 128 KB buffer an eighth of a second of a descheduled worker, and
            # a block holds a whole 64 KB super-frame (a frame longer than a
            # block would be cut, and counted as JOOL_DP_RX_TRUNCATED).
            from jool.control.kernel import gso_enabled
            vnet = gso_enabled() and self.tx.gso_ready
            self.rings = [RxRing(name, block_size=1 << 17, block_nr=128, vnet=vnet,
                                 fanout_group=(fanout_group + k) & 0xffff,
                                 bpf=self._attach_bpf)
                          for k, name in enumerate(self.interfaces)]
        self.running = True

    def _build(self, doc, build_translator):
        overrides = {"counters": self.counter_block.row(self.index + 1)}
        self.mtus = self.resolver.view.family_mtus(self.interfaces)
        mtu4, mtu6 = self.mtus
        overrides.update(mtu4_out=mtu4, mtu6_out=mtu6, mtu4_in=mtu4, mtu6_in=mtu6)
        if self.own4:
            overrides["own4"] = self.own4
        if self.own6:
            overrides["own6"] = self.own6
        return build_translator(doc, self.tables, **overrides)

    def _set_debug(self, doc):
        """logging-debug on: the rings note every packet for the debug log."""
        wanted = bool(doc.get("globals", {}).get("logging-debug"))
        if wanted and self.trace is None:
            from jool._fast.rings import PacketTrace
            from jool.control.registry import netns_id
            from jool.dataplane.debuglog import TRACE_CAPACITY, DebugLog
            self.trace = PacketTrace(TRACE_CAPACITY)
            self.debug = DebugLog(doc["instance"], netns_id())
        elif not wanted and self.trace is not None:
            self.debug.close()
            self.trace = self.debug = None

    def _acknowledge(self):
        """Slot 0 of the worker's counter row (no counter has ID 0) tells the control
        process which configuration generation this worker applies."""
        self.counter_block.row(self.index + 1)[0] = self.generation

    def _attach_bpf(self, sock):
        """Only what the instance owns reaches the ring (jool/dataplane/bpf.py)."""
        if self.bpf:
            from jool.dataplane.bpf import attach
            attach(sock, [tuple(i) for i in self.bpf])

    _drops_read = 0

    def _attach_hand_back(self):
        """Claimed packets the translator passes go back to the kernel through the
        namespace's hand-back pair (control/kernel.py), when there is one."""
        from jool.control.kernel import HANDBACK_RX, HANDBACK_TX
        try:
            with open(f"/sys/class/net/{HANDBACK_RX}/address") as f:
                peer = f.read().strip()
            self.tx.set_hand_back(HANDBACK_TX, peer)
        except OSError as exc:
            log.warning("worker %d: no hand-back link (%s): passed packets are dropped",
                        self.index, exc)

    def refresh(self, now):
        """Between wakeups: queued next-hop misses, a new configuration generation,
        a new network mirror (the cache is flushed, MTUs re-read)."""
        if self.resolver.changed():
            self.tx.flush()
            mtus = self.resolver.view.family_mtus(self.interfaces)
            if mtus != self.mtus:
                self.mtus = mtus
                self.translator.update(mtu4_out=mtus[0], mtu6_out=mtus[1],
                                       mtu4_in=mtus[0], mtu6_in=mtus[1])
        self.resolver.serve(self.tx, now)
        if now - self._drops_read >= DROPS_EVERY_MS or now < self._drops_read:
            self._drops_read = now
            lost = 0
            for ring in self.rings:
                try:
                    lost += ring.dropped()
                except OSError:
                    pass
            if lost:
                self.counter_block.row(self.index + 1)[DP_RX_DROPPED_SLOT] += lost
        if self.block.generation != self.generation and not self.block.retired:
            from jool.control.configblock import build_translator
            self.generation, doc = self.block.read()
            self.translator = self._build(doc, build_translator)
            self._set_debug(doc)
            if doc.get("bpf") != self.bpf:
                self.bpf = doc.get("bpf")
                for ring in self.rings:
                    self._attach_bpf(ring.sock)
            self._acknowledge()
            log.info("worker %d: configuration generation %d", self.index, self.generation)

    def run(self):
        """Translates until told to stop: SIGTERM, the instance's configuration
        block retired, or (once the control process that started it has died) the
        block gone from /dev/shm. A control process that dies does not stop
        forwarding: the next one takes the workers over (server.py take_over)."""
        from jool._fast.rings import wait
        from jool.control.instance import now_ms
        from jool.control.shm import exists
        parent = os.getppid()
        orphan_checked = 0
        while self.running:
            for ready in wait(self.rings + self.queues, POLL_MS):
                if ready in self.queues:
                    ready.drain(self.translator, now_ms(), self.tx)
                else:
                    ready.drain(self.translator, now_ms(), self.tx, self.reassembler,
                                trace=self.trace)
            if self.trace is not None:
                self.debug.write(self.trace)
            if self.block.retired:
                log.info("worker %d: instance removed", self.index)
                break
            now = now_ms()
            self.refresh(now)
            if os.getppid() != parent and (now - orphan_checked >= ORPHAN_CHECK_MS or
                                           now < orphan_checked):
                orphan_checked = now
                if not exists(self.block.name):
                    log.info("worker %d: control process and instance gone", self.index)
                    break

    def close(self):
        for ring in self.rings + self.queues:
            ring.close()
        self.tx.close()
        self.resolver.close()
        self.tables.close()
        self.block.close()
        self.counter_block.close()


def main(config_name, counters_name, index, interfaces, fanout_group, cpu=None,
         net_name=None, queue_base=None):
    """Entry point of a worker process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jool-worker: %(message)s")
    if cpu is not None and os.environ.get("JOOL_PIN_WORKERS", "1") != "0":
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    worker = Worker(config_name, counters_name, index, interfaces, fanout_group, net_name,
                    queue_base)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "running", False))
    try:
        worker.run()
    finally:
        worker.close()
