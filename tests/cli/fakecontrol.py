"""An in-process stand-in for the control process, for testing the `jool` client.

It listens on its own abstract socket (the tests point JOOL_CONTROL_SOCKET at it),
speaks the framing of docs/control-protocol.md and keeps a deliberately small model
of a translator: instances with globals (validated with jool.config.globals),
pool4 rows, BIB rows and canned sessions and counters.  It records every request so
tests can tell whether a command reached the translator at all.
"""

import ipaddress
import json
import socket
import struct
import threading
import uuid

from jool.cli.stats_doc import EXPLANATIONS
from jool.config import globals as gl

MUTATING = {"instance.add", "instance.remove", "instance.flush", "global.update",
            "pool4.add", "pool4.remove", "pool4.flush", "bib.add", "bib.remove",
            "file.handle", "joold.advertise"}
STAT_NAMES = [name for name in EXPLANATIONS if name.startswith("JSTAT")]


class Failure(Exception):
    def __init__(self, status, *messages):
        super().__init__(status)
        self.status = status
        self.messages = list(messages)


class FakeInstance:
    def __init__(self, name, framework, pool6):
        self.name = name
        self.framework = framework
        self.globals = {k: gl.to_json(k, v) for k, v in gl.defaults(pool6).items()}
        self.pool4 = []         # [mark, PROTO, addr, min, max, iterations|None, fixed]
        self.bib = {"tcp": [], "udp": [], "icmp": []}   # [addr6, port6, addr4, port4, static]
        self.sessions = {"tcp": [], "udp": [], "icmp": []}
        self.stats = [[name_, 0] for name_ in STAT_NAMES]


class FakeControl:
    def __init__(self, name=None):
        self.name = name or f"jool-test/{uuid.uuid4().hex}"
        self.instances = {}
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind("\0" + self.name)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ plumbing

    def close(self):
        self.running = False
        try:                                    # wake the accept() at once
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as poke:
                poke.connect("\0" + self.name)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if not self.running:
                conn.close()
                return
            with conn:
                try:
                    conn.settimeout(5)
                    request = self._recv(conn)
                    answer = self.handle(request)
                    data = json.dumps(answer).encode()
                    conn.sendall(struct.pack("!I", len(data)) + data)
                except Exception:       # a broken client must not stop the server
                    continue

    @staticmethod
    def _recv(conn):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError()
                buf += chunk
            return buf
        (length,) = struct.unpack("!I", exact(4))
        return json.loads(exact(length))

    def mutations(self):
        return [r for r in self.requests if r["op"] in MUTATING]

    def handle(self, request):
        with self.lock:
            self.requests.append(request)
            op = request["op"].replace(".", "_")
            try:
                data = getattr(self, "op_" + op)(request)
            except Failure as exc:
                return {"status": exc.status, "messages": exc.messages}
            return {"status": 0, "data": data}

    def instance(self, request):
        name = request.get("instance", "default")
        try:
            return self.instances[name]
        except KeyError:
            raise Failure(3, f"This namespace lacks an instance named '{name}'.") from None

    # ------------------------------------------------------------------ instance

    def op_instance_add(self, r):
        name = r["instance"]
        if name in self.instances:
            raise Failure(17, f"An instance named '{name}' already exists.")
        if r["framework"] == "netfilter" and any(
                i.framework == "netfilter" for i in self.instances.values()):
            raise Failure(17, "This namespace already has a Netfilter instance.")
        try:
            pool6 = gl.validate("pool6", r.get("pool6"))
        except gl.ConfigError as exc:
            raise Failure(22, exc.message) from None
        self.instances[name] = FakeInstance(name, r["framework"], pool6)

    def op_instance_remove(self, r):
        self.instance(r)
        del self.instances[r["instance"]]

    def op_instance_flush(self, r):
        self.instances.clear()

    def op_instance_status(self, r):
        return "Running" if r["instance"] in self.instances else "Dead"

    def op_instance_list(self, r):
        return [{"name": i.name, "framework": i.framework} for i in self.instances.values()]

    # ------------------------------------------------------------------ stats, global

    def op_stats_display(self, r):
        return self.instance(r).stats

    def op_metrics_openmetrics(self, r):
        """The real renderer over the fake's counters, all in the control row."""
        from jool.control import metrics
        chosen = list(self.instances.values()) if r.get("instance") is None \
            else [self.instance(r)]
        snapshots = []
        for inst in chosen:
            counts = dict(inst.stats)
            snapshots.append({
                "name": inst.name, "framework": inst.framework,
                "pool6": inst.globals.get("pool6") or "",
                "rows": [("control", {name: counts.get(name, 0)
                                      for name, _slot in metrics.COUNTER_SLOTS})],
                "gauges": {name: counts.get(name, 0) for name in metrics.GAUGES},
                "capacity": {"bib": 1024, "sessions": 1024},
                "entries": {p: (len(inst.bib[p]), len(inst.sessions[p]))
                            for p in metrics.PROTOCOLS},
                "pool4_ports": {p: sum(row[4] - row[3] + 1 for row in inst.pool4
                                       if row[1].lower() == p) for p in metrics.PROTOCOLS},
                "workers": {"configured": 0, "running": 0, "restarts": 0},
                "sync": {"enabled": 0, "attached": 0, "queued": 0, "capacity": 512,
                         "awaiting_ack": 0}})
        return metrics.render(snapshots)

    def op_global_display(self, r):
        inst = self.instance(r)
        return [[k, inst.globals[k]] for k in gl.NAMES]

    def op_global_update(self, r):
        inst = self.instance(r)
        key = r["key"]
        try:
            value = gl.parse_json(key, r["value"])
            current = gl.parse_json(key, inst.globals[key]) if key == "pool6" else None
            value = gl.validate(key, value, current, r.get("force", False))
        except gl.ConfigError as exc:
            raise Failure(22, exc.message) from None
        inst.globals[key] = gl.to_json(key, value)

    # ------------------------------------------------------------------ pool4

    def op_pool4_display(self, r):
        inst = self.instance(r)
        proto = r["proto"].upper()
        rows = [row for row in inst.pool4 if row[1] == proto]
        return sorted(rows, key=lambda row: (-row[0], ipaddress.IPv4Address(row[2]), row[3]))

    def op_pool4_add(self, r):
        inst = self.instance(r)
        net = ipaddress.IPv4Network(r["prefix"], strict=False)
        if str(net) != r["prefix"] and f"{net.network_address}/{net.prefixlen}" != r["prefix"]:
            raise Failure(22, f"Prefix '{r['prefix']}' has nonzero host bits.")
        proto = r["proto"].upper()
        iterations = r["max_iterations"]
        if iterations == 0:
            raise Failure(22, "max-iterations cannot be zero.")
        same = [row for row in inst.pool4 if row[0] == r["mark"] and row[1] == proto]
        if iterations == "infinity":
            its, fixed = None, True
        elif iterations in ("auto",) or (iterations == "keep" and not same):
            its, fixed = 1024, False
        elif iterations == "keep":
            its, fixed = same[0][5], same[0][6]
        else:
            its, fixed = iterations, True
        for row in same:
            row[5], row[6] = its, fixed
        for addr in net:
            inst.pool4.append([r["mark"], proto, str(addr), r["min"], r["max"], its, fixed])

    def op_pool4_remove(self, r):
        inst = self.instance(r)
        net = ipaddress.IPv4Network(r["prefix"], strict=False)
        proto = r["proto"].upper()
        inst.pool4 = [row for row in inst.pool4
                      if not (row[1] == proto and row[0] == r["mark"]
                              and ipaddress.IPv4Address(row[2]) in net
                              and r["min"] <= row[3] and row[4] <= r["max"])]

    def op_pool4_flush(self, r):
        inst = self.instance(r)
        inst.pool4 = []
        if not r.get("quick"):
            for rows in inst.bib.values():
                rows.clear()

    # ------------------------------------------------------------------ bib, session

    def op_bib_display(self, r):
        inst = self.instance(r)
        return sorted(inst.bib[r["proto"]],
                      key=lambda e: (ipaddress.IPv4Address(e[2]), e[3]))

    def op_bib_add(self, r):
        inst = self.instance(r)
        proto = r["proto"]
        if not any(row[1] == proto.upper() and row[2] == r["addr4"]
                   and row[3] <= r["port4"] <= row[4] for row in inst.pool4):
            raise Failure(22, f"Transport address '{r['addr4']}#{r['port4']}' does not "
                              "belong to pool4.")
        for e in inst.bib[proto]:
            if (e[0], e[1]) == (r["addr6"], r["port6"]) or (e[2], e[3]) == (r["addr4"],
                                                                            r["port4"]):
                if e[:4] == [r["addr6"], r["port6"], r["addr4"], r["port4"]]:
                    e[4] = True
                    return
                raise Failure(17, f"Entry {r['addr4']}#{r['port4']}|{r['addr6']}#"
                                  f"{r['port6']} collides with {e[2]}#{e[3]}|{e[0]}#{e[1]}.")
        inst.bib[proto].append([r["addr6"], r["port6"], r["addr4"], r["port4"], True])

    def op_bib_remove(self, r):
        inst = self.instance(r)
        for e in inst.bib[r["proto"]]:
            if "addr6" in r and (e[0], e[1]) != (r["addr6"], r["port6"]):
                continue
            if "addr4" in r and (e[2], e[3]) != (r["addr4"], r["port4"]):
                continue
            inst.bib[r["proto"]].remove(e)
            return
        raise Failure(3, "The entry wasn't in the database.")

    def op_session_display(self, r):
        return self.instance(r).sessions[r["proto"]]

    # ------------------------------------------------------------------ file, joold

    def op_file_handle(self, r):
        config = r["config"]
        name = r["instance"]
        if name not in self.instances:
            pool6 = config["global"].get("pool6")
            if pool6 is None:
                raise Failure(22, "pool6 is mandatory")
            self.instances[name] = FakeInstance(name, config["framework"], pool6)
        inst = self.instances[name]
        for key, value in config["global"].items():
            inst.globals[key] = value

    def op_joold_advertise(self, r):
        inst = self.instance(r)
        if not inst.globals["ss-enabled"]:
            raise Failure(22, "Session synchronization is disabled on this instance.")
