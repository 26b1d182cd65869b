"""A worker's side of the next-hop cache: reading the control process's network
mirror (jool/control/netmirror.py) and resolving the destinations the egress
queued as misses (jool/_fast/egress.pyx).

Resolution asks the kernel which route it would take (RTM_GETROUTE, so the
routing decision is the kernel's own, longest prefix and metrics included) and
looks the next hop up among the mirrored neighbours. A destination is cached only
when the answer is a plain unicast route out of an Ethernet interface that is up,
with a known neighbour; everything else stays with the kernel's raw-socket path.
Python runs here once per new destination, never per packet.
"""

import ipaddress
import logging

log = logging.getLogger("jool.worker")

RTN_UNICAST = 1
NO_NEIGHBOUR_RETRY_MS = 200      # the kernel is resolving it right now
NOT_CACHEABLE_RETRY_MS = 2000    # local, multipath, not Ethernet...
LEARNED_TTL_MS = 5000           # then one packet through the kernel confirms the neighbour


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


class NetView:
    """One generation of the mirror, indexed for the worker."""

    def __init__(self, document):
        document = document or {"links": {}, "addrs": [], "neigh": [], "policy": True}
        self.policy = document["policy"]
        self.links = {int(k): v for k, v in document["links"].items()}
        self.addrs = document["addrs"]
        self.neigh = {(ifindex, str(ipaddress.ip_address(addr))): mac
                      for ifindex, addr, mac in document["neigh"]}

    def family_mtus(self, interfaces):
        """(IPv4 MTU, IPv6 MTU): the smallest MTU among the attached interfaces that
        carry a global address of the family (the translator's own fragmentation
        and Packet Too Big decisions; the cache also checks each next hop's MTU)."""
        by_name = {v[0]: (k, v[2]) for k, v in self.links.items()}
        wanted = [by_name[i] for i in interfaces if i in by_name]
        every = [mtu for _k, mtu in wanted] or [1500]
        result = []
        for family in (2, 10):
            carrying = {ifindex for fam, ifindex, _a in self.addrs if fam == family}
            mtus = [mtu for k, mtu in wanted if k in carrying]
            result.append(min(mtus) if mtus else min(every))
        return tuple(result)

    def local_addresses(self):
        """(first global IPv4, first global IPv6): the sources of the ICMP errors the
        translator itself sends (spec behaviour §10)."""
        v4 = next((a for f, _i, a in self.addrs if f == 2 and not a.startswith("127.")), None)
        v6 = next((a for f, _i, a in self.addrs if f == 10 and a != "::1"), None)
        return v4, v6


class Resolver:
    def __init__(self, block_name):
        from jool.control.configblock import ConfigBlock
        self.block = ConfigBlock.attach(block_name) if block_name else None
        self.generation = -1
        self.view = NetView(None)
        self._ipr = None

    def changed(self):
        """True (and the new view loaded) when the mirror has a new generation."""
        if self.block is None or self.block.generation == self.generation:
            return False
        self.generation, document = self.block.read()
        self.view = NetView(document)
        return True

    def _route(self, address):
        if self._ipr is None:
            from pyroute2 import IPRoute
            self._ipr = IPRoute()
        try:
            return self._ipr.route("get", dst=address)[0]
        except Exception:
            return None                 # unreachable, prohibited...

    def resolve(self, family, raw):
        """('learn', ifindex, dst_mac, src_mac, mtu) or ('refuse', retry_ms)."""
        view = self.view
        if view.policy or self.block is None:
            return ("refuse", NOT_CACHEABLE_RETRY_MS)
        address = str(ipaddress.ip_address(bytes(raw)))
        route = self._route(address)
        if (route is None or route.get("type") != RTN_UNICAST
                or route.get_attr("RTA_MULTIPATH") is not None):
            return ("refuse", NOT_CACHEABLE_RETRY_MS)
        ifindex = route.get_attr("RTA_OIF")
        link = view.links.get(ifindex)
        if link is None or not link[3] or not link[1]:
            return ("refuse", NOT_CACHEABLE_RETRY_MS)
        gateway = route.get_attr("RTA_GATEWAY") or address
        mac = view.neigh.get((ifindex, str(ipaddress.ip_address(gateway))))
        if mac is None:
            return ("refuse", NO_NEIGHBOUR_RETRY_MS)
        mtu = link[2]
        metrics = route.get_attr("RTA_METRICS")
        if metrics:
            route_mtu = metrics.get_attr("RTAX_MTU")
            if route_mtu:
                mtu = min(mtu, route_mtu)
        return ("learn", ifindex, _mac(mac), _mac(link[1]), mtu)

    def serve(self, egress, now):
        """Resolves every destination the egress queued; returns how many."""
        misses = egress.misses()
        for family, raw in misses:
            answer = self.resolve(family, raw)
            if answer[0] == "learn":
                _, ifindex, dst_mac, src_mac, mtu = answer
                egress.learn(family, raw, ifindex, dst_mac, src_mac, mtu, now,
                             LEARNED_TTL_MS)
            else:
                egress.refuse(family, raw, now, answer[1])
        return len(misses)

    def close(self):
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self.block is not None:
            self.block.close()
            self.block = None
