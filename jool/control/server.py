"""The control process of one network namespace (docs/control-protocol.md).

A single-threaded loop: it accepts CLI connections on the namespace's abstract
socket, answers one request per connection, and every 2 seconds runs the timer
pass of each instance (spec/behaviour.md §5.2). Requests are handled one at a
time, so configuration changes never interleave.
"""

import logging
import logging.handlers
import os
import selectors
import signal
import socket
import struct
import sys
import time

from jool.control import registry
from jool.control.instance import Instance, instance_from_file, now_ms
from jool.sync.link import FrameLink, LinkClosed
from jool.control.protocol import (MAX_MESSAGE, ControlError, EEXIST, EINVAL, EPERM, ESRCH,
                                   abstract_address, decode_body, encode_message,
                                   send_message)

TIMER_PERIOD = 2.0
IDLE_EXIT = 10.0            # a control process that never got an instance stops then
WORKER_CHECK = 0.5          # a dead worker is restarted within this (plus its start-up)
SYNC_PERIOD = 0.005         # the loop's longest sleep while a joold is attached
LOG_PERIOD = 0.05           # ... while an instance logs BIB entries or sessions
CAP_NET_ADMIN = 12
PENDING_TIMEOUT = 10.0      # a request must arrive whole within this
MAX_PENDING = 64            # connections whose request is still arriving
MAX_PENDING_PER_UID = 8     # ... of them from one unprivileged uid (half for all of those)
REPLY_TIMEOUT = 30.0        # a client that does not read its answer is dropped then
# Unprivileged peers may only ask for stats (spec/cli.md §2.2): a few hundred
# bytes. Anything longer from them is refused before it is buffered.
UNPRIVILEGED_MAX_MESSAGE = 64 * 1024
# What anyone may ask (spec/cli.md §2.2: stats); the metrics are the same counters.
OPEN_OPERATIONS = ("stats.display", "metrics.openmetrics")
log = logging.getLogger("jool.control")


def peer_credentials(conn):
    """(pid, uid, gid) of the connected process (SO_PEERCRED)."""
    data = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", data)


def has_net_admin(pid, uid):
    """Root (SO_PEERCRED, fixed when the peer connected), or CAP_NET_ADMIN in the
    effective set of process `pid` while its effective uid is still the one it
    connected with: a peer that connected unprivileged and then exec'd a setuid
    program (or whose pid was reused) is not taken for that program."""
    if uid == 0:
        return True
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        if int(fields["Uid"].split()[1]) != uid:
            return False
        return bool(int(fields["CapEff"].split()[0], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, KeyError, ValueError, IndexError):
        return False


DEFAULT_QUEUE = 64                 # first NFQUEUE number of an --iptables instance


class PendingReply:
    """An answer the client has not read whole yet."""

    def __init__(self, conn, pid, data):
        self.conn, self.pid = conn, pid
        self.data = memoryview(data)
        self.deadline = time.monotonic() + REPLY_TIMEOUT

    def send(self):
        """Writes what the socket takes; True once everything left."""
        while self.data:
            try:
                sent = self.conn.send(self.data)
            except (BlockingIOError, InterruptedError):
                return False
            self.data = self.data[sent:]
        return True


class PendingRequest:
    """One client's request as its bytes arrive (docs/control-protocol.md framing:
    4-byte big-endian length, then that much JSON)."""

    def __init__(self, conn, pid, uid, privileged):
        self.conn = conn
        self.pid, self.uid, self.privileged = pid, uid, privileged
        self.limit = MAX_MESSAGE if privileged else UNPRIVILEGED_MAX_MESSAGE
        self.deadline = time.monotonic() + PENDING_TIMEOUT
        self.buffer = bytearray()
        self.length = None

    def read(self):
        """Reads what is there; the decoded request once whole, else None.
        Raises ValueError/ConnectionError on a malformed or abandoned one."""
        while True:
            want = 4 if self.length is None else self.length - len(self.buffer)
            try:
                chunk = self.conn.recv(min(max(want, 1), 1 << 20))
            except (BlockingIOError, InterruptedError):
                return None
            if not chunk:
                raise ConnectionError("connection closed mid-message")
            self.buffer += chunk
            if self.length is None and len(self.buffer) >= 4:
                self.length = struct.unpack("!I", self.buffer[:4])[0]
                if self.length > self.limit:
                    raise ValueError(f"message of {self.length} bytes exceeds the limit "
                                     f"of {self.limit} for this peer")
                del self.buffer[:4]
            if self.length is not None and len(self.buffer) >= self.length:
                if len(self.buffer) > self.length:
                    raise ValueError("bytes after the request")
                return decode_body(bytes(self.buffer))


class ControlServer:
    def __init__(self, socket_name=None, exit_when_empty=True, log_json=None):
        from jool.control.sessionlog import sinks_from_environment
        self.instances = {}
        self.log_sinks = sinks_from_environment(log_json)
        self.loggers = {}               # instance name -> SessionLogger
        self.sync_links = {}            # joold links (FrameLink) -> instance name
        self.netns = registry.netns_id()
        self.exit_when_empty = exit_when_empty
        self.running = True
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(abstract_address(socket_name))     # EADDRINUSE: one per namespace
        self.sock.listen(64)
        self.sock.setblocking(False)
        self._started = time.monotonic()
        self.pending = {}               # connections whose request is still arriving
        self.replies = {}               # connections whose answer is still leaving
        self.unadopted = []             # registry entries a takeover could not attach to
        self.listen_paused_until = None  # accept() failed (EMFILE...): unwatched until then
        self.refused_requests = 0

    # ------------------------------------------------------------ loop

    def serve_forever(self):
        sel = self._selector = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, "listen")
        if self.mirror is not None:
            sel.register(self.mirror, selectors.EVENT_READ, "mirror")
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.register(sel)
        next_tick = time.monotonic() + TIMER_PERIOD
        try:
            while self.running:
                timeout = min(WORKER_CHECK, max(0.0, next_tick - time.monotonic()))
                if self.sync_links:
                    timeout = min(timeout, SYNC_PERIOD)
                if self.logging_wanted():
                    timeout = min(timeout, LOG_PERIOD)
                for key, events in sel.select(timeout):
                    self.guarded(self.on_event, key, events)
                for step in self.periodic_steps():
                    self.guarded(step)
                if time.monotonic() >= next_tick:
                    self.guarded(self.tick)
                    next_tick = time.monotonic() + TIMER_PERIOD
                if self.exit_when_empty and not self.instances and (
                        self._had_instances or time.monotonic() - self._started > IDLE_EXIT):
                    self.running = False
        finally:
            self.shutdown()

    def guarded(self, step, *args):
        """Runs one step of the loop; an error is logged and the loop goes on. An
        exception leaving serve_forever would shut every instance down (its
        finally), which no bad request, failed fork or full /run may cause."""
        try:
            step(*args)
        except Exception:
            log.exception("%s failed; carrying on", getattr(step, "__name__", step))

    def on_event(self, key, events):
        if key.data == "mirror":
            self.mirror.on_readable()
        elif key.data == "listen":
            self.accept()
        elif key.data == "request":
            self.on_request_readable(key.fileobj)
        elif key.data == "reply":
            self.on_reply_writable(key.fileobj)
        elif key.data == "metrics":
            self.metrics_endpoint.on_event(key.fileobj, events)
        else:
            self.on_sync_link(key.fileobj, events)

    def resume_listening(self):
        if self.listen_paused_until is not None and time.monotonic() >= self.listen_paused_until:
            self.listen_paused_until = None
            self._selector.register(self.sock, selectors.EVENT_READ, "listen")

    def periodic_steps(self):
        steps = [self.resume_listening]
        if self.mirror is not None:
            steps.append(self.mirror.refresh)
        steps += [self.check_workers, self.expire_pending]
        if self.metrics_endpoint is not None:
            steps.append(self.metrics_endpoint.expire)
        return steps + [self.pump_sync, self.pump_logs]

    def accept(self):
        """New connections are read without blocking the loop: a client that
        connects and sends nothing (or half a message) holds only its own
        connection until PENDING_TIMEOUT, never the timers or the workers'
        supervision."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:              # EMFILE and the like: try again later
                log.warning("accept failed: %s; not accepting for a second", exc)
                # The socket stays readable: unwatched for a while, not spun on.
                self._selector.unregister(self.sock)
                self.listen_paused_until = time.monotonic() + 1.0
                return
            try:
                pid, uid, _gid = peer_credentials(conn)
            except OSError:
                conn.close()
                continue
            privileged = has_net_admin(pid, uid)
            # Unprivileged peers get a share of the slots, and one uid a share of
            # that: they cannot lock root out by holding connections open.
            unprivileged = [r for r in self.pending.values() if not r.privileged]
            if len(self.pending) >= MAX_PENDING or not privileged and (
                    len(unprivileged) >= MAX_PENDING // 2 or
                    sum(r.uid == uid for r in unprivileged) >= MAX_PENDING_PER_UID):
                self.count_refused(f"too many connections pending (pid {pid}, uid {uid})")
                conn.close()
                continue
            conn.setblocking(False)
            request = PendingRequest(conn, pid, uid, privileged)
            self.pending[conn] = request
            self._selector.register(conn, selectors.EVENT_READ, "request")

    def on_request_readable(self, conn):
        request = self.pending.get(conn)
        if request is None:
            return
        try:
            message = request.read()
        except Exception as exc:        # RecursionError of deeply nested JSON too
            self.count_refused(f"malformed request dropped: {type(exc).__name__}: {exc}")
            self.forget_pending(conn, close=True)
            return
        if message is None:
            return                              # more to come
        self.forget_pending(conn, close=False)
        kept = False
        try:
            kept = self.handle_request(conn, request, message)
        finally:
            if not kept:
                conn.close()

    def forget_pending(self, conn, close):
        self.pending.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        if close:
            conn.close()

    def expire_pending(self):
        now = time.monotonic()
        for conn, pending in list(self.replies.items()):
            if now >= pending.deadline:
                self.count_refused(f"pid {pending.pid} did not read its answer within "
                                   f"{REPLY_TIMEOUT:g} s")
                self.forget_reply(conn)
        for conn, request in list(self.pending.items()):
            if now >= request.deadline:
                self.count_refused(f"request from pid {request.pid} not complete within "
                                   f"{PENDING_TIMEOUT:g} s")
                self.forget_pending(conn, close=True)

    def count_refused(self, why):
        self.refused_requests += 1
        log.warning("%s", why)

    _had_instances = False
    _started = time.monotonic()
    _selector = None
    mirror = None
    metrics_endpoint = None

    # ------------------------------------------------------------ metrics

    def serve_metrics(self, listen):
        """The optional HTTP endpoint (jool/control/metrics.py) on ADDRESS:PORT.
        A failure is logged and the control process goes on without it: the
        translator matters more than its metrics."""
        from jool.control.metrics import MetricsEndpoint
        try:
            self.metrics_endpoint = MetricsEndpoint(listen, lambda: self.openmetrics(None))
        except (OSError, ValueError) as exc:
            log.error("metrics endpoint %s not served: %s", listen, exc)
            return False
        log.info("metrics served on http://%s/metrics", listen)
        return True

    def openmetrics(self, name):
        """The OpenMetrics text of one instance (by name), or of all with None."""
        from jool.control import metrics
        chosen = self.instances.values() if name is None else [self.instance({"instance": name})]
        return metrics.render([metrics.snapshot(i) for i in chosen], self.refused_requests)

    # ------------------------------------------------------------ session sync links

    def on_sync_link(self, link, events):
        """A joold's link (jool/sync/link.py): its frames go to its instance's sync."""
        name = self.sync_links.get(link)
        inst = self.instances.get(name)
        try:
            if events & selectors.EVENT_WRITE:
                link.flush()
            if events & selectors.EVENT_READ:
                for frame in link.receive():
                    if inst is not None:
                        inst.sync.on_frame(frame, now_ms())
        except LinkClosed as exc:
            log.info("instance %s: joold link closed (%s)", name, exc)
            self.drop_sync_link(link)

    def drop_sync_link(self, link):
        name = self.sync_links.pop(link, None)
        inst = self.instances.get(name)
        if inst is not None and inst._sync is not None:
            inst.sync.detach(link)
        try:
            self._selector.unregister(link)
        except (KeyError, ValueError, AttributeError):
            pass
        link.close()

    def pump_sync(self):
        for link, name in list(self.sync_links.items()):
            inst = self.instances.get(name)
            if inst is None or link.closed or (inst._sync is not None and
                                               inst.sync.link is not link):
                self.drop_sync_link(link)
                continue
            try:
                inst.sync_pump()
            except Exception:
                log.exception("instance %s: session sync failed", name)
            if not link.closed:
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.wants_write else 0)
                if self._selector.get_key(link).events != want:
                    self._selector.modify(link, want, "sync")
            else:
                self.drop_sync_link(link)

    # ------------------------------------------------------------ BIB and session logs

    def logging_wanted(self):
        return any(i.values.get("logging-bib") or i.values.get("logging-session")
                   for i in self.instances.values())

    def pump_logs(self, adopted=()):
        from jool.control.sessionlog import SessionLogger
        for name in [n for n in self.loggers if n not in self.instances]:
            del self.loggers[name]
        for name, inst in self.instances.items():
            logger = self.loggers.get(name)
            if logger is None:
                logger = self.loggers[name] = SessionLogger(
                    self.log_sinks, self.netns, log_from_start=name in adopted)
            try:
                logger.pump(inst)
            except Exception:
                log.exception("instance %s: session logging failed", name)

    def network_mirror(self, existing=None):
        """The namespace's mirror of links, addresses and neighbours, made when
        the first dataplane starts (jool/control/netmirror.py)."""
        if self.mirror is None:
            from jool.control.netmirror import NetMirror
            self.mirror = NetMirror(self.netns, existing)
            if self._selector is not None:
                self._selector.register(self.mirror, selectors.EVENT_READ, "mirror")
        return self.mirror

    def start_dataplane(self, inst):
        """netfilter instances translate on every interface of the namespace;
        iptables instances what their netfilter queues receive (JOOL_DATAPLANE=0
        keeps the control plane alone, for tests)."""
        if os.environ.get("JOOL_DATAPLANE", "1") == "0":
            return
        from jool.control.kernel import attachable
        interfaces = attachable(sorted(i for i in os.listdir("/sys/class/net") if i != "lo"))
        try:
            inst.start_dataplane(interfaces, self.network_mirror().name)
        except Exception:
            log.exception("instance %s: the dataplane did not start", inst.name)
            del self.instances[inst.name]
            inst.close()
            raise ControlError(EINVAL, "The dataplane could not start (see the log).")

    def tick(self):
        for inst in list(self.instances.values()):
            try:
                self.send(inst.expire())
            except Exception:
                log.exception("timer pass of instance %s failed", inst.name)

    def check_workers(self):
        restarted = 0
        for inst in self.instances.values():
            if inst.workers is not None:
                restarted += inst.workers.check()
        if restarted:
            self.publish()              # a successor must know the new pids

    def send(self, outputs):
        """Packets of the timer pass (TCP probes, port unreachables for stored SYNs)."""
        if not outputs:
            return
        if self._tx is None:
            self._tx = (socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW),
                        socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW))
            self._tx[1].setsockopt(socket.IPPROTO_IPV6, 36, 1)      # IPV6_HDRINCL
        for kind, packet in outputs:
            try:
                if int(kind) & 0xF == 4:
                    self._tx[0].sendto(packet, (socket.inet_ntop(socket.AF_INET, packet[16:20]), 0))
                else:
                    self._tx[1].sendto(packet, (socket.inet_ntop(socket.AF_INET6, packet[24:40]), 0))
            except OSError as exc:
                log.debug("timer packet not sent: %s", exc)

    _tx = None

    def shutdown(self):
        for inst in self.instances.values():
            inst.close()
        self.instances.clear()
        self.publish()
        self.sock.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()
            self.metrics_endpoint = None
        if self.mirror is not None:
            self.mirror.close()
            self.mirror = None

    def finish_removal(self, item, previous_pid=None):
        """An instance whose removal the dead control process had begun (its
        configuration block retired): what it left is removed. True if so."""
        from jool.control import shm
        from jool.control.configblock import ConfigBlock
        from jool.control.workers import AdoptedWorker
        base = item.get("tables", "")
        try:
            block = ConfigBlock.attach(base + "-config")
            retired = block.retired
            block.close()
        except (OSError, ValueError):
            retired = not shm.exists(base + "-config")
        if not retired:
            return False
        for pid in (item.get("pool") or {}).get("workers") or ():
            if pid:
                worker = AdoptedWorker(pid, base + "-config")
                if worker.is_alive():
                    worker.kill()
        try:
            from jool.control import kernel
            kernel.remove(item["name"])
        except Exception:
            pass
        for suffix in ("-config", "-counters", ""):
            shm.unlink(base + suffix)
        log.info("instance %r: the removal pid %s had begun is finished", item.get("name"),
                 previous_pid)
        return True

    def publish(self):
        registry.publish(self.netns, os.getpid(),
                         [i.takeover_entry() for i in self.instances.values()] +
                         [item for item in self.unadopted
                          if item.get("name") not in self.instances],
                         mirror=self.mirror.name if self.mirror is not None else None)

    def take_over(self):
        """Adopts the instances of this namespace's previous control process if it
        died (SIGKILL, crash): their tables, counters and configuration stay in
        shared memory and their workers kept forwarding; this process attaches to
        all of it and supervises the workers from now on. Returns the names."""
        entry = registry.read(self.netns)
        if not entry or not entry.get("instances") or registry.control_alive(entry):
            return []
        from jool.control import shm
        dataplane = os.environ.get("JOOL_DATAPLANE", "1") != "0"
        mirror = entry.get("mirror")
        if dataplane and mirror and shm.exists(mirror):
            try:
                self.network_mirror(existing=mirror)
            except Exception:
                log.exception("the previous network mirror %s could not be attached", mirror)
        taken = []
        for item in entry["instances"]:
            try:
                inst = Instance.adopt(item)
            except Exception:
                if self.finish_removal(item, entry.get("pid")):
                    continue
                # Kept in the registry: its segments, rules and workers are not
                # forgotten, and the next control process tries again.
                log.exception("instance %r of pid %s could not be taken over",
                              item.get("name"), entry.get("pid"))
                self.unadopted.append(item)
                continue
            self.instances[inst.name] = inst
            if dataplane:
                try:
                    adopted = inst.resume_dataplane(item, self.network_mirror().name)
                except Exception:
                    log.exception("instance %s: its dataplane could not be resumed", inst.name)
                    adopted = 0
            else:
                adopted = 0
            log.info("instance %s taken over from pid %s (%d running workers adopted)",
                     inst.name, entry.get("pid"), adopted)
            taken.append(inst.name)
        if taken:
            self._had_instances = True
            self.pump_logs(adopted=taken)   # what happened meanwhile is logged too
        self.publish()
        return taken

    def handle_request(self, conn, request, req):
        """Answers one complete request; True when the connection stays open
        (a joold's link)."""
        pid = request.pid
        kept = False
        try:
            op = req.get("op")
            if op not in OPEN_OPERATIONS and not request.privileged:
                raise ControlError(EPERM, "Operation not permitted: root or CAP_NET_ADMIN "
                                          "is required")
            if op == "joold.subscribe":
                data = self.subscribe_joold(conn, req)
                kept = True
            else:
                data = self.dispatch(op, req)
            reply = {"status": 0, "data": data}
        except ControlError as exc:
            reply = {"status": exc.status, "messages": exc.messages}
        except (KeyError, TypeError, ValueError) as exc:
            reply = {"status": EINVAL, "messages": [f"Malformed request: {exc}"]}
        except Exception as exc:           # never let one request take the process down
            log.exception("request %r failed", req.get("op"))
            reply = {"status": EINVAL, "messages": [f"Internal error: {exc}"]}
        if self.instances:
            self._had_instances = True
        if kept:                        # a joold (privileged): its short answer, then the link
            try:
                conn.setblocking(True)
                conn.settimeout(REPLY_TIMEOUT)
                send_message(conn, reply)
            except OSError as exc:
                log.warning("reply to pid %d not sent: %s", pid, exc)
            self.attach_joold(conn, req)
            return True
        return self.start_reply(conn, pid, reply)

    def start_reply(self, conn, pid, reply):
        """Sends what the socket takes now; the rest goes out as the client reads
        (on_reply_writable), so a client that does not read holds nobody up.
        Returns True while the connection must stay open for that."""
        pending = PendingReply(conn, pid, encode_message(reply))
        try:
            conn.setblocking(False)
            if pending.send():
                return False
        except OSError as exc:
            log.warning("reply to pid %d not sent: %s", pid, exc)
            return False
        self.replies[conn] = pending
        self._selector.register(conn, selectors.EVENT_WRITE, "reply")
        return True

    def on_reply_writable(self, conn):
        pending = self.replies.get(conn)
        if pending is None:
            return
        try:
            done = pending.send()
        except OSError as exc:
            log.warning("reply to pid %d not sent: %s", pending.pid, exc)
            done = True
        if done:
            self.forget_reply(conn)

    def forget_reply(self, conn):
        self.replies.pop(conn, None)
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def subscribe_joold(self, conn, req):
        """A joold's request to carry an instance's sessions (spec/joold.md §4.5,
        our link instead of netlink); the connection then stays open as its link."""
        inst = self.instance(req)
        return {"instance": inst.name, "ss-enabled": bool(inst.values.get("ss-enabled"))}

    def attach_joold(self, conn, req):
        inst = self.instance(req)
        link = FrameLink(conn)
        for old, name in list(self.sync_links.items()):
            if name == inst.name:
                log.info("instance %s: a new joold replaces the previous one", name)
                self.drop_sync_link(old)
        inst.sync.attach(link)
        self.sync_links[link] = inst.name
        self._selector.register(link, selectors.EVENT_READ, "sync")

    # ------------------------------------------------------------ operations

    def instance(self, req):
        name = req.get("instance") or "default"
        inst = self.instances.get(name)
        if inst is None:
            raise ControlError(ESRCH, f"This namespace lacks an instance named '{name}'.")
        return inst

    def dispatch(self, op, req):
        handler = getattr(self, "op_" + str(op).replace(".", "_"), None)
        if handler is None:
            raise ControlError(EINVAL, f"Unknown operation '{op}'")
        return handler(req)

    def op_instance_add(self, req):
        name = req.get("instance") or "default"
        framework = req.get("framework") or "netfilter"
        if name in self.instances:
            raise ControlError(EEXIST, f"This namespace already has an instance named '{name}'.")
        if framework == "netfilter" and any(i.framework == "netfilter"
                                            for i in self.instances.values()):
            raise ControlError(EEXIST, "This namespace already has a Netfilter instance.")
        queue_base = None
        if framework == "iptables":
            queue_base = self.free_queues(req.get("queue"))
        inst = Instance.create(name, framework, req.get("pool6"), self.netns,
                               bool(req.get("force")))
        inst.queue_base = queue_base
        self.instances[name] = inst
        self.start_dataplane(inst)
        self.publish()

    def free_queues(self, requested):
        """The first of the netfilter queue numbers a new --iptables instance's
        workers read (one per worker: base .. base + workers - 1). Without
        --queue, the first free range from 64 on (spec: any number of iptables
        instances)."""
        from jool.control.workers import worker_count
        count = worker_count()
        taken = [(o.name, o.queue_base) for o in self.instances.values()
                 if o.queue_base is not None]

        def clash(base):
            return next(((n, b) for n, b in taken if abs(b - base) < count), None)
        if requested is None:
            base = DEFAULT_QUEUE
            while clash(base):
                base += count
        else:
            base = requested
        if not isinstance(base, int) or not 0 <= base <= 65536 - count:
            raise ControlError(EINVAL, f"The queue number must be 0-{65536 - count}.")
        other = clash(base)
        if other:
            raise ControlError(EEXIST, (
                f"Queues {base}-{base + count - 1} overlap those of instance '{other[0]}' "
                f"({other[1]}-{other[1] + count - 1}); choose others with --queue."))
        return base

    def op_instance_remove(self, req):
        inst = self.instance(req)
        del self.instances[inst.name]
        inst.close()
        self.publish()

    def op_instance_flush(self, req):
        for inst in self.instances.values():
            inst.close()
        self.instances.clear()
        self.publish()

    def op_instance_status(self, req):
        return "Running" if (req.get("instance") or "default") in self.instances else "Dead"

    def op_instance_list(self, req):
        return [{"name": i.name, "framework": i.framework} for i in self.instances.values()]

    def op_stats_display(self, req):
        return self.instance(req).stats(userspace=bool(req.get("userspace")))

    def op_metrics_openmetrics(self, req):
        return self.openmetrics(req.get("instance"))

    def op_global_display(self, req):
        return self.instance(req).global_display()

    def op_global_update(self, req):
        self.instance(req).global_update(req["key"], req["value"], bool(req.get("force")))

    def op_pool4_display(self, req):
        return self.instance(req).pool4_display(req.get("proto", "tcp"))

    def op_pool4_add(self, req):
        self.instance(req).pool4_add(req["proto"], req["prefix"], int(req["min"]),
                                     int(req["max"]), int(req.get("mark", 0)),
                                     req.get("max_iterations", "keep"), bool(req.get("force")))

    def op_pool4_remove(self, req):
        self.instance(req).pool4_remove(req.get("proto", "tcp"), req["prefix"],
                                        int(req.get("min", 0)), int(req.get("max", 65535)),
                                        int(req.get("mark", 0)), bool(req.get("quick")))

    def op_pool4_flush(self, req):
        self.instance(req).pool4_flush(bool(req.get("quick")))

    def op_bib_display(self, req):
        return self.instance(req).bib_display(req.get("proto", "tcp"))

    def op_bib_add(self, req):
        self.instance(req).bib_add(req.get("proto", "tcp"), req["addr6"], int(req["port6"]),
                                   req["addr4"], int(req["port4"]))

    def op_bib_remove(self, req):
        def opt_int(v):
            return None if v is None else int(v)
        self.instance(req).bib_remove(req.get("proto", "tcp"), req.get("addr6"),
                                      opt_int(req.get("port6")), req.get("addr4"),
                                      opt_int(req.get("port4")))

    def op_session_display(self, req):
        return self.instance(req).session_display(req.get("proto", "tcp"))

    def op_file_handle(self, req):
        config = req["config"]
        name = config.get("instance") or req.get("instance") or "default"
        config = dict(config, instance=name)
        force = bool(req.get("force"))
        inst = self.instances.get(name)
        if inst is not None:
            inst.apply_file(config, force)
            return
        if config["framework"] == "netfilter" and any(i.framework == "netfilter"
                                                      for i in self.instances.values()):
            raise ControlError(EEXIST, "This namespace already has a Netfilter instance.")
        inst = instance_from_file(config, self.netns, force)
        self.instances[name] = inst
        self.start_dataplane(inst)
        self.publish()

    def op_joold_advertise(self, req):
        inst = self.instance(req)
        if not inst.values.get("ss-enabled"):
            raise ControlError(EINVAL, "Session synchronization is disabled on this instance.")
        inst.sync.advertise()


# ------------------------------------------------------------------ process

def setup_logging(foreground):
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if foreground:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s jool-control: %(message)s"))
    elif os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler("/dev/log",
                                                 logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("jool-control[%(process)d]: %(message)s"))
    else:
        os.makedirs("/run/jool-userspace", exist_ok=True)
        handler = logging.FileHandler(f"/run/jool-userspace/control-{registry.netns_id()}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s jool-control[%(process)d]: %(message)s"))
    root.handlers[:] = [handler]


def daemonize():
    """Detaches from the terminal (double fork). The parent returns the child's
    pid once the socket is bound, through a pipe, so a caller can retry at once."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        with os.fdopen(read_end) as f:
            f.read()
        return False
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    return write_end


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m jool.control",
                                 description="The jool control process of this network namespace.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--foreground", action="store_true",
                      help="stay in the foreground, log to stderr (for service managers)")
    mode.add_argument("--daemon", action="store_true",
                      help="detach and log to syslog (what `jool instance add` does)")
    ap.add_argument("--socket", default=None, help="abstract socket name (tests)")
    ap.add_argument("--persist", action="store_true",
                    help="keep running when the last instance is removed")
    ap.add_argument("--log-json", metavar="PATH", default=None,
                    help="also write logging-bib and logging-session records to PATH as "
                         "JSON lines (or JOOL_SESSION_LOG_JSON)")
    ap.add_argument("--metrics-listen", metavar="ADDRESS:PORT",
                    default=os.environ.get("JOOL_METRICS_LISTEN") or None,
                    help="serve the OpenMetrics text at http://ADDRESS:PORT/metrics "
                         "([ADDRESS]:PORT for IPv6; default $JOOL_METRICS_LISTEN, else off)")
    args = ap.parse_args(argv)
    ready = None
    if args.daemon:
        ready = daemonize()
        if ready is False:
            return 0
    setup_logging(not args.daemon)
    try:
        server = ControlServer(args.socket, exit_when_empty=not args.persist,
                               log_json=args.log_json)
    except OSError as exc:
        log.error("cannot listen on the control socket: %s", exc)
        if ready:
            os.close(ready)
        return 1
    # Bound: no other control process serves this namespace, so what a dead one
    # left is ours to take over.
    server.take_over()
    if args.metrics_listen:
        server.serve_metrics(args.metrics_listen)
    if ready:
        os.close(ready)                  # tells the waiting parent we are listening
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "running", False))
    if not args.daemon:                  # a daemon's NOTIFY_SOCKET is its starter's
        from jool.control.service import notify_ready
        notify_ready()                   # systemd (jool-control@.service): listening
    log.info("listening (netns %x)", server.netns)
    server.serve_forever()
    log.info("stopped")
    return 0
