"""A dataplane worker: one process per CPU, started and supervised by the control
process (jool/control/workers.py).

It attaches to its instance's published configuration (jool/control/configblock.py)
and shared tables, opens one TPACKET_V3 ring per interface joined to the
instance's fanout group, and loops: wait for frames, let the ring drain them
through the translator (GIL released, no Python per packet), and between wakeups
pick up a new configuration generation and the interfaces' current MTUs.
"""

import logging
import os
import signal
import time

log = logging.getLogger("jool.worker")

MTU_REFRESH = 1.0           # seconds between reads of the interfaces' MTUs
POLL_MS = 20               # also how soon a new configuration is picked up


def interface_mtu(ifname):
    with open(f"/sys/class/net/{ifname}/mtu") as f:
        return int(f.read())


def family_mtus(interfaces):
    """(IPv4 MTU, IPv6 MTU): the smallest MTU among the interfaces that carry a
    global address of that family. Until routes are mirrored per destination, the
    next hop of a family is taken to be behind one of those interfaces."""
    from pyroute2 import IPRoute
    names = {}
    families = {2: set(), 10: set()}
    with IPRoute() as ipr:
        for link in ipr.get_links():
            names[link["index"]] = link.get_attr("IFLA_IFNAME")
        for msg in ipr.get_addr():
            if msg.get("scope", 0) == 0 and msg["family"] in families:
                families[msg["family"]].add(names.get(msg["index"]))
    wanted = set(interfaces)
    every = [interface_mtu(i) for i in interfaces] or [1500]
    result = []
    for family in (2, 10):
        mtus = [interface_mtu(i) for i in families[family] & wanted]
        result.append(min(mtus) if mtus else min(every))
    return tuple(result)


def local_addresses():
    """(first global IPv4, first global IPv6) of the namespace: the sources of the
    ICMP errors the translator itself sends (spec behaviour §10)."""
    from pyroute2 import IPRoute
    v4 = v6 = None
    with IPRoute() as ipr:
        for msg in ipr.get_addr():
            if msg.get("scope", 0) != 0:
                continue
            addr = msg.get_attr("IFA_ADDRESS")
            if msg["family"] == 2 and v4 is None and not addr.startswith("127."):
                v4 = addr
            elif msg["family"] == 10 and v6 is None and addr != "::1":
                v6 = addr
    return v4, v6


class Worker:
    def __init__(self, config_name, counters_name, index, interfaces, fanout_group):
        from jool._fast.defrag import Reassembler
        from jool._fast.rings import RxRing, TxSockets
        from jool._fast.tables import Tables
        from jool.control.configblock import ConfigBlock, build_translator
        from jool.control.counters import CounterBlock

        self.index = index
        self.interfaces = list(interfaces)
        self.block = ConfigBlock.attach(config_name)
        self.generation, doc = self.block.read()
        self.tables = Tables.attach(doc["tables"])
        self.counter_block = CounterBlock.attach(counters_name)
        self.own4, self.own6 = local_addresses()
        self.translator = self._build(doc, build_translator)
        self._acknowledge()
        self.tx = TxSockets()
        self.reassembler = Reassembler()
        self.bpf = doc.get("bpf")
        # A fanout group belongs to one device: interface k of every worker joins
        # group fanout_group + k.
        self.rings = [RxRing(name, block_size=1 << 20, block_nr=16,
                             fanout_group=(fanout_group + k) & 0xffff, bpf=self._attach_bpf)
                      for k, name in enumerate(self.interfaces)]
        self.running = True
        self._mtu_at = 0.0

    def _build(self, doc, build_translator):
        overrides = {"counters": self.counter_block.row(self.index + 1)}
        self.mtus = family_mtus(self.interfaces)
        mtu4, mtu6 = self.mtus
        overrides.update(mtu4_out=mtu4, mtu6_out=mtu6, mtu4_in=mtu4, mtu6_in=mtu6)
        if self.own4:
            overrides["own4"] = self.own4
        if self.own6:
            overrides["own6"] = self.own6
        return build_translator(doc, self.tables, **overrides)

    def _acknowledge(self):
        """Slot 0 of the worker's counter row (no counter has ID 0) tells the control
        process which configuration generation this worker applies."""
        self.counter_block.row(self.index + 1)[0] = self.generation

    def _attach_bpf(self, sock):
        """Only what the instance owns reaches the ring (jool/dataplane/bpf.py)."""
        if self.bpf:
            from jool.dataplane.bpf import attach
            attach(sock, [tuple(i) for i in self.bpf])

    def refresh(self):
        """A new configuration generation, or changed MTUs, between wakeups."""
        now = time.monotonic()
        if self.block.generation != self.generation:
            from jool.control.configblock import build_translator
            self.generation, doc = self.block.read()
            self.translator = self._build(doc, build_translator)
            if doc.get("bpf") != self.bpf:
                self.bpf = doc.get("bpf")
                for ring in self.rings:
                    self._attach_bpf(ring.sock)
            self._acknowledge()
            log.info("worker %d: configuration generation %d", self.index, self.generation)
        if now - self._mtu_at >= MTU_REFRESH:
            self._mtu_at = now
            mtus = family_mtus(self.interfaces)
            if mtus != self.mtus:
                self.mtus = mtus
                self.translator.update(mtu4_out=mtus[0], mtu6_out=mtus[1],
                                       mtu4_in=mtus[0], mtu6_in=mtus[1])

    def run(self):
        from jool._fast.rings import wait
        from jool.control.instance import now_ms
        parent = os.getppid()
        while self.running:
            for ring in wait(self.rings, POLL_MS):
                ring.drain(self.translator, now_ms(), self.tx, self.reassembler)
            self.refresh()
            if os.getppid() != parent:          # the control process is gone
                break

    def close(self):
        for ring in self.rings:
            ring.close()
        self.tx.close()
        self.tables.close()
        self.block.close()
        self.counter_block.close()


def main(config_name, counters_name, index, interfaces, fanout_group, cpu=None):
    """Entry point of a worker process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jool-worker: %(message)s")
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass
    worker = Worker(config_name, counters_name, index, interfaces, fanout_group)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "running", False))
    try:
        worker.run()
    finally:
        worker.close()
