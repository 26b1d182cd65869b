"""The joold process (spec/joold.md §6): relays session-sync datagrams between its
instance's control process (a link over the control socket, jool/sync/link.py)
and the other translators (UDP multicast), without looking inside them.

One thread, one select loop:
* control -> network: each "sync" frame carries ready-made datagrams; they go to
  the group, then an "ack" goes back (with how many the kernel refused), which
  is what lets the translator hand over the next ones (§2).
* network -> control: datagrams are read in bursts (up to 2048 bytes each, §4.1)
  and relayed as one "add" frame per burst, with the number of datagrams the
  kernel dropped for want of buffer space since the last one (SO_RXQ_OVFL), so
  those losses are counted too.
* With a shared key (our extension, jool/sync/signing.py) every datagram sent is
  signed, and only received datagrams that verify are relayed; the others are
  dropped here and their numbers ride in the next "add" frame (unsigned, forged,
  replayed, malformed), so the control process counts them with the rest.
  Without a key, datagrams go out and come in as 4.1.9's, untouched (a signed
  one has its trailer taken off, unverified).
When the control process goes away (instance removed, restarted), joold keeps
its multicast membership and reconnects.
"""

import base64
import errno
import ipaddress
import logging
import logging.handlers
import os
import selectors
import socket
import struct
import time

from jool.control.protocol import abstract_address, recv_message, send_message
from jool.sync import signing
from jool.sync.link import FrameLink, LinkClosed
from jool.sync.wire import MAX_DATAGRAM

log = logging.getLogger("joold")

SO_RXQ_OVFL = 40
SO_RCVBUFFORCE = 33             # not in Python's socket module
RECEIVE_BUFFER = 16 << 20       # bursts of a busy peer fit (SO_RCVBUFFORCE as root)
SEND_BUFFER = 4 << 20
BURST = 512                     # datagrams read before relaying them in one frame
RECONNECT_EVERY = 1.0
DROP_LOG_EVERY = 10.0           # seconds between two log lines about dropped datagrams
# Datagram drops of a keyed joold, as named in the "add" frame.
DROP_REASONS = (signing.UNSIGNED, signing.FORGED, signing.REPLAYED, "malformed")


class SetupError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _interface_index(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise SetupError(errno.ENODEV, f"unknown interface '{name}'") from None


def open_multicast(net):
    """The datagram socket of §6: bound to the group and port, joined, loopback off."""
    group = ipaddress.ip_address(net["multicast address"])
    port = net["multicast port"]
    family = socket.AF_INET6 if group.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if "reuseaddr" in net:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, net["reuseaddr"])
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        if family == socket.AF_INET:
            sock.bind((str(group), port))
            local = net.get("in interface")
            mreq = group.packed + (ipaddress.IPv4Address(local).packed if local
                                   else b"\0\0\0\0")
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            if "ttl" in net:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, net["ttl"])
            if net.get("out interface"):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                ipaddress.IPv4Address(net["out interface"]).packed)
            destination = (str(group), port)
        else:
            index = _interface_index(net["in interface"]) if net.get("in interface") else 0
            sock.bind((str(group), port, 0, index if group.is_link_local else 0))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                            group.packed + struct.pack("@I", index))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            if "ttl" in net:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, net["ttl"])
            out_index = index
            if net.get("out interface"):
                out_index = _interface_index(net["out interface"])
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, out_index)
            destination = (str(group), port, 0, out_index if group.is_link_local else 0)
    except SetupError:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        sock.close()
        raise SetupError(getattr(exc, "errno", None) or errno.EINVAL,
                         f"multicast socket: {exc}") from None
    # Blocking for sends (a full send buffer waits a moment rather than drop a
    # datagram); every receive passes MSG_DONTWAIT instead.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    return sock, destination


class Joold:
    def __init__(self, net, instance, control_socket=None, key=None):
        """key: the shared key (bytes), or None for 4.1.9's unsigned datagrams."""
        self.instance = instance
        self.control_socket = control_socket
        self.init_admission(key)
        self.mcast, self.destination = open_multicast(net)
        self.link = None
        self.running = True
        self.overflow_seen = 0          # the kernel's running drop count (SO_RXQ_OVFL)
        self.lost_unreported = 0
        self.relayed_out = 0
        self.relayed_in = 0
        self.next_connect = 0.0

    # ------------------------------------------------------------ control link

    def connect(self):
        """Subscribes to the instance; returns False (and retries later) when no
        control process or no such instance is there."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(abstract_address(self.control_socket))
            send_message(sock, {"op": "joold.subscribe", "instance": self.instance})
            reply = recv_message(sock)
        except (OSError, ValueError, ConnectionError) as exc:
            sock.close()
            log.debug("no control process yet: %s", exc)
            return False
        if reply.get("status"):
            sock.close()
            log.warning("instance %s: %s", self.instance, "; ".join(reply.get("messages", [])))
            return False
        if not reply["data"].get("ss-enabled"):
            log.warning("instance %s has ss-enabled false: nothing will be synchronized "
                        "until it is set", self.instance)
        self.link = FrameLink(sock)
        log.info("attached to instance %s", self.instance)
        return True

    def _drop_link(self, why):
        log.warning("instance %s: link lost (%s); reconnecting", self.instance, why)
        if self.link is not None:
            try:
                self.sel.unregister(self.link)
            except (KeyError, ValueError):
                pass
            self.link.close()
        self.link = None
        self.next_connect = time.monotonic() + RECONNECT_EVERY

    def on_frames(self, frames):
        for frame in frames:
            if frame.get("type") != "sync":
                log.warning("unexpected frame %r from the control process", frame.get("type"))
                continue
            failed = 0
            for text in frame.get("datagrams", ()):
                try:
                    datagram = base64.b64decode(text)
                    if self.signer is not None:
                        datagram = self.signer.sign(datagram)
                    self.mcast.sendto(datagram, self.destination)
                    self.relayed_out += 1
                except (OSError, ValueError) as exc:
                    failed += 1
                    log.debug("datagram not sent: %s", exc)
            self.link.send({"type": "ack", "seq": frame.get("seq"), "failed": failed})

    # ------------------------------------------------------------ network

    def init_admission(self, key):
        """What admit() needs (no socket: tests build a bare Joold with it)."""
        self.signer = signing.SyncKey(key) if key is not None else None
        self.dropped_unreported = dict.fromkeys(DROP_REASONS, 0)
        self.dropped_total = dict.fromkeys(DROP_REASONS, 0)
        self.dropped_logged = dict.fromkeys(DROP_REASONS, 0)
        self.next_drop_log = 0.0
        self.unverified_logged = False

    def admit(self, data, truncated=False):
        """The records of a received datagram to relay, or None when it is
        dropped here (counted by reason). truncated: it was longer than
        MAX_DATAGRAM and is cut (MSG_TRUNC)."""
        if self.signer is None:
            # 4.1.9's behaviour: relay what was read; the control process
            # counts what is malformed. A keyed peer's trailer goes: nothing
            # can check it here and it is not a record.
            stripped = signing.strip_unverified(data)
            if stripped is not data and not self.unverified_logged:
                log.warning("signed datagrams received but no shared key is configured: "
                            "accepted without verification")
                self.unverified_logged = True
            return stripped
        if truncated:
            verdict = "malformed"           # its trailer is cut off: nothing to verify
        else:
            verdict, records = self.signer.verify(data)
            if verdict == signing.ACCEPTED:
                return records
        self.dropped_unreported[verdict] += 1
        self.dropped_total[verdict] += 1
        return None

    def _log_drops(self):
        """One line now and then about datagrams dropped for their signature,
        not one per datagram (a flood of forgeries must not flood the log)."""
        now = time.monotonic()
        if now < self.next_drop_log or self.dropped_total == self.dropped_logged:
            return
        news = {reason: self.dropped_total[reason] - self.dropped_logged[reason]
                for reason in DROP_REASONS}
        log.warning("datagrams dropped since the last report: %s",
                    ", ".join(f"{n} {reason}" for reason, n in news.items() if n))
        self.dropped_logged = dict(self.dropped_total)
        self.next_drop_log = now + DROP_LOG_EVERY

    def on_multicast(self):
        datagrams = []
        space = socket.CMSG_SPACE(4)
        read = 0
        while read < BURST:
            try:
                data, ancillary, flags, _addr = self.mcast.recvmsg(MAX_DATAGRAM, space,
                                                                   socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("multicast receive: %s", exc)
                break
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                    total = struct.unpack("@I", value[:4])[0]
                    self.lost_unreported += (total - self.overflow_seen) & 0xFFFFFFFF
                    self.overflow_seen = total
            read += 1
            records = self.admit(data, truncated=bool(flags & socket.MSG_TRUNC))
            if records is not None:
                datagrams.append(base64.b64encode(records).decode())
        if self.signer is not None:
            self._log_drops()
        drops = {reason: n for reason, n in self.dropped_unreported.items() if n}
        if not (datagrams or drops) or self.link is None:
            return                      # nobody to give them to: like 4.1.9, gone
        self.relayed_in += len(datagrams)
        self.link.send(dict({"type": "add", "datagrams": datagrams,
                             "lost": self.lost_unreported}, **drops))
        self.lost_unreported = 0
        self.dropped_unreported = dict.fromkeys(DROP_REASONS, 0)

    # ------------------------------------------------------------ loop

    def run(self):
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.mcast, selectors.EVENT_READ, "mcast")
        while self.running:
            if self.link is None and time.monotonic() >= self.next_connect:
                if self.connect():
                    self.sel.register(self.link, selectors.EVENT_READ, "link")
                else:
                    self.next_connect = time.monotonic() + RECONNECT_EVERY
            if self.link is not None:
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.link.wants_write
                                               else 0)
                if self.sel.get_key(self.link).events != want:
                    self.sel.modify(self.link, want, "link")
            for key, events in self.sel.select(RECONNECT_EVERY):
                try:
                    if key.data == "mcast":
                        self.on_multicast()
                    elif self.link is not None:
                        if events & selectors.EVENT_WRITE:
                            self.link.flush()
                        if events & selectors.EVENT_READ:
                            self.on_frames(self.link.receive())
                except LinkClosed as exc:
                    self._drop_link(exc)

    def close(self):
        if self.link is not None:
            self.link.close()
        self.mcast.close()


def setup_logging():
    """§6: a notice on stdout, then syslog (ident joold, facility daemon) only;
    JOOLD_LOG=stderr keeps it on stderr (tests, foreground debugging)."""
    target = os.environ.get("JOOLD_LOG", "syslog")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if target == "stderr" or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("joold: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(
            address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.ident = "joold: "
    root.addHandler(handler)
    return target
