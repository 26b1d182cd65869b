"""The control process's mirror of the kernel's links, addresses and neighbours,
published to the workers for their next-hop caches (jool/_fast/egress.pyx).

One per namespace. A netlink socket subscribed to link, address, route, neighbour
and rule changes wakes the control loop; any such event marks the mirror dirty,
and the next refresh dumps the tables through pyroute2 and publishes a new document
in a shared block (the same seqlock layout as configblock.py) if what the workers
use changed:

    links   {ifindex: [name, mac, mtu, ethernet-and-up]}
    addrs   [[family, ifindex, address]]       global addresses
    neigh   [[ifindex, address, mac]]          usable neighbours only
    policy  true when routing rules other than the defaults exist
    routes  a count of route and rule changes (workers ask the kernel for
            routes themselves; any change must flush their caches)

A neighbour going from REACHABLE to STALE and back changes nothing the workers use,
so it publishes nothing; a new MAC address, a neighbour that failed, an MTU, an
address or any route change publishes a new generation, and every worker flushes
its cache. With policy rules (source or mark based) a destination alone does not
name a next hop, so the workers leave every packet to the kernel.
"""

import errno
import logging
import secrets
import socket
import struct

from jool.control.configblock import ConfigBlock

log = logging.getLogger("jool.control")

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
RTMGRP_IPV6_RULE = 1 << 18
GROUPS = (RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE
          | RTMGRP_IPV4_RULE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE | RTMGRP_IPV6_RULE)
# nlmsghdr types that concern the mirror: links, addresses, routes, neighbours, rules.
RELEVANT = {16, 17, 20, 21, 24, 25, 28, 29, 32, 33}
ROUTING = {24, 25, 32, 33}
NLMSG_HDR = struct.Struct("=IHHII")

ARPHRD_ETHER = 1
IFF_UP = 0x1
IFF_NOARP = 0x80
# RFC 4861 7.3.2 states in which the kernel itself sends to the cached address.
NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x80     # REACHABLE STALE DELAY PROBE PERMANENT
# The rules a namespace starts with (ip rule list): priority -> table.
DEFAULT_RULES = {2: {(0, 255), (32766, 254), (32767, 253)}, 10: {(0, 255), (32766, 254)}}


def snapshot():
    """The document the workers use, from a dump of the kernel's tables."""
    from pyroute2 import IPRoute
    links, addrs, neigh = {}, [], []
    rules = {2: set(), 10: set()}
    with IPRoute() as ipr:
        for msg in ipr.get_links():
            flags = msg.get("flags", 0)
            ether = (msg.get("ifi_type") == ARPHRD_ETHER and flags & IFF_UP
                     and not flags & IFF_NOARP)
            links[str(msg["index"])] = [msg.get_attr("IFLA_IFNAME"),
                                        msg.get_attr("IFLA_ADDRESS"),
                                        msg.get_attr("IFLA_MTU"), bool(ether)]
        for msg in ipr.get_addr():
            if msg.get("scope", 0) == 0:
                addrs.append([msg["family"], msg["index"], msg.get_attr("IFA_ADDRESS")])
        for msg in ipr.get_neighbours():
            mac = msg.get_attr("NDA_LLADDR")
            if msg.get("state", 0) & NUD_USABLE and mac and msg["family"] in (2, 10):
                neigh.append([msg["ifindex"], msg.get_attr("NDA_DST"), mac])
        for family in (2, 10):
            for msg in ipr.get_rules(family=family):
                table = msg.get_attr("FRA_TABLE") or msg.get("table")
                rules[family].add((msg.get_attr("FRA_PRIORITY") or 0, table))
    addrs.sort()
    neigh.sort()
    policy = any(rules[f] - DEFAULT_RULES[f] for f in rules)
    return {"links": links, "addrs": addrs, "neigh": neigh, "policy": policy}


class NetMirror:
    def __init__(self, netns, existing=None):
        """existing: the block of a control process that died, which its workers
        still read (server.py take_over); publishing goes on in it."""
        if existing is not None:
            self.block = ConfigBlock.attach(existing)
        else:
            self.block = ConfigBlock.create(f"jool64-{netns}-net-{secrets.token_hex(4)}",
                                            size=16 * 1024 * 1024)
        self.name = self.block.name
        self.events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.events.bind((0, GROUPS))
        self.events.setblocking(False)
        self.document = None
        self.route_changes = 0
        self.dirty = True
        self.refresh()

    def fileno(self):
        return self.events.fileno()

    def on_readable(self):
        """Reads every pending event; any relevant one (or lost ones) marks the
        mirror dirty."""
        while True:
            try:
                data = self.events.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:      # events were lost: dump again
                    self.dirty = True
                    self.route_changes += 1
                    continue
                raise
            offset = 0
            while offset + NLMSG_HDR.size <= len(data):
                length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
                if kind in RELEVANT:
                    self.dirty = True
                if kind in ROUTING:
                    self.route_changes += 1
                if length < NLMSG_HDR.size:
                    break
                offset += (length + 3) & ~3

    def refresh(self):
        """Publishes a new document if the kernel's tables changed what workers use;
        returns True when it did."""
        if not self.dirty:
            return False
        self.dirty = False
        try:
            document = dict(snapshot(), routes=self.route_changes)
        except Exception:
            log.exception("the network mirror could not be read; retrying")
            self.dirty = True
            return False
        if document == self.document:
            return False
        self.document = document
        generation = self.block.publish(document)
        log.debug("network mirror generation %d", generation)
        return True

    def close(self):
        self.events.close()
        self.block.close()
        self.block.unlink()
