"""One NAT64 instance as the control process holds it: its global values, its
Translator and its shared tables. Every change is validated in full before any of
it is applied, so a failed command leaves the instance exactly as it was."""

import ipaddress
import os
import re
import secrets
import time

from jool._fast.pipeline import Translator
from jool._fast.stats import COUNTER_NAMES
from jool._fast.tables import Tables
from jool.config import globals as glb
from jool.config.pool4 import Pool4, Pool4Error
from jool.control.configblock import ConfigBlock
from jool.control.counters import CounterBlock
from jool.control.protocol import ControlError, EEXIST, EINVAL, ESRCH

PROTOCOLS = ("tcp", "udp", "icmp")
DEFAULT_CAPACITY = int(os.environ.get("JOOL_TABLE_CAPACITY", 1 << 20))


def now_ms():
    """The clock every process of a namespace shares (CLOCK_MONOTONIC), in wrapping ms."""
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


def _config_error(exc):
    return ControlError(getattr(exc, "code", EINVAL) if getattr(exc, "code", 0) else EINVAL,
                        str(exc))


def _max_iterations(value):
    """Protocol value ("keep", "auto", "infinity", N) -> Translator.pool4_add's."""
    if value in (None, "keep"):
        return "keep"
    if value == "auto":
        return None
    if value == "infinity":
        return 0
    value = int(value)
    if value < 1:
        raise ControlError(EINVAL, "max-iterations must be at least 1 (or auto, infinity)")
    return value


def _proto(name):
    proto = str(name).lower()
    if proto not in PROTOCOLS:
        raise ControlError(EINVAL, f"Unknown protocol '{name}'")
    return proto


def _segment_name(netns, name):
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
    return f"jool64-{netns}-{safe}-{secrets.token_hex(4)}"


class Instance:
    def __init__(self, name, framework, netns, values, pool4=None, capacity=DEFAULT_CAPACITY):
        self.name = name
        self.framework = framework
        self.values = values
        self.tables = Tables.create(capacity=capacity, name=_segment_name(netns, name))
        self.config = None
        self.counters = None
        self.workers = None
        try:
            self.config = ConfigBlock.create(self.tables.name + "-config")
            self.counters = CounterBlock.create(self.tables.name + "-counters")
            self.translator = Translator(tables=self.tables, counters=self.counters.row(0),
                                         **glb.translator_kwargs(values))
            if pool4 is not None:
                self.translator.set_pool4(pool4)
            self.publish()
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------ dataplane

    def claims(self):
        """pool4 as (proto, address, min, max) rows, for the kernel rules and BPF."""
        return [(s.proto, str(ipaddress.IPv4Address(a)), lo, hi)
                for s in self.translator.pool4.ordered_sets() for a, lo, hi in s.entries()]

    queue_base = None           # --iptables: the first NFQUEUE number (nfqueue.pyx)

    # ------------------------------------------------------------ session sync

    _sync = None

    @property
    def sync(self):
        """Session synchronization (jool/sync/instance_sync.py), made when first
        needed: its sent-state arrays take 8 bytes per session of capacity."""
        if self._sync is None:
            from jool.sync.instance_sync import InstanceSync
            self._sync = InstanceSync(self.tables, self.counters.row(0), lambda: self.values,
                                      lambda: self.translator.options)
        return self._sync

    def sync_pump(self):
        if self._sync is not None:
            self._sync.pump(now_ms())

    def start_dataplane(self, interfaces, net_name=None, workers=None):
        """netfilter: claims the instance's traffic on the interfaces (netdev
        ingress drop rules, so the kernel never also handles it) and starts the
        workers on rings. iptables: starts the workers on the netfilter queues the
        operator's rules feed (queue_base + worker), claiming nothing."""
        from jool.control.workers import WorkerPool
        self.interfaces = list(interfaces)
        if self.framework == "iptables":
            self.workers = WorkerPool(self.config.name, self.counters.name, self.interfaces,
                                      count=workers, net_name=net_name,
                                      queue_base=self.queue_base)
            self.workers.start()
            return
        if not self.interfaces:
            return
        # Super-frames (GRO/LRO, and TSO/GSO of local senders) are not forwardable
        # as they are: turn them off on the attached interfaces and say so.
        from jool.control import kernel
        import logging
        for ifname in self.interfaces:
            try:
                changed = kernel.disable_offloads(ifname, keep_send=kernel.gso_enabled())
                if changed:
                    logging.getLogger("jool.control").info(
                        "%s: turned off %s on %s", self.name, ", ".join(changed), ifname)
            except Exception as exc:
                logging.getLogger("jool.control").warning(
                    "%s: offloads of %s left as they are: %s", self.name, ifname, exc)
        self._claim()
        self.workers = WorkerPool(self.config.name, self.counters.name, self.interfaces,
                                  net_name=net_name)
        self.workers.start()

    def _claim(self):
        if not getattr(self, "interfaces", None):
            return
        try:
            from jool.control import kernel
        except ImportError:
            return                              # not built yet: the kernel keeps them too
        kernel.install(self.name, self.interfaces, self.values["pool6"], self.claims(),
                       self._empty_pool4_addresses())
        self.claimed = True
        try:
            kernel.create_handback()
            self.handback = True
        except Exception as exc:         # claimed-but-passed traffic then stays dropped
            import logging
            logging.getLogger("jool.control").warning(
                "%s: no hand-back link, untranslatable claimed traffic is dropped: %s",
                self.name, exc)

    def _empty_pool4_addresses(self):
        if not self.translator.pool4.empty:
            return ()
        return (self.translator.options["empty_pool4_addr"],)

    def document(self):
        """What the workers need to rebuild this instance's Translator."""
        options = self.translator.options
        options["mtu_plateaus"] = list(options["mtu_plateaus"])
        sets = [{"proto": s.proto, "mark": s.mark, "max_iterations": s.max_iterations,
                 "entries": [[str(ipaddress.IPv4Address(a)), lo, hi] for a, lo, hi in s.entries()]}
                for s in self.translator.pool4.ordered_sets()]
        doc = {"instance": self.name, "framework": self.framework, "tables": self.tables.name,
               "translator": options, "pool4": sets,
               # the globals as `jool global display` has them: what a control
               # process that takes this instance over starts from (ControlServer.take_over)
               "globals": {key: glb.to_json(key, self.values[key]) for key in glb.NAMES}}
        try:
            from jool.dataplane.bpf import owned_filter
            doc["bpf"] = [list(i) for i in owned_filter(self.values["pool6"], self.claims(),
                                                        self._empty_pool4_addresses())]
        except ImportError:
            pass
        return doc

    def publish(self):
        """A new generation of the configuration block, after every change, and the
        kernel's claim rules to match."""
        if getattr(self, "claimed", False):
            self._claim()
        generation = self.config.publish(self.document())
        if self.workers is not None:
            self.workers.wait_generation(self.counters, generation)
        return generation

    @classmethod
    def create(cls, name, framework, pool6, netns, force=False, capacity=DEFAULT_CAPACITY):
        if framework not in ("netfilter", "iptables"):
            raise ControlError(EINVAL, f"Unknown framework '{framework}'")
        if pool6 is None:
            raise ControlError(EINVAL, "pool6 is mandatory")
        values = glb.defaults(None)
        try:
            values["pool6"] = glb.validate("pool6", pool6, None, force)
        except glb.ConfigError as exc:
            raise _config_error(exc) from None
        return cls(name, framework, netns, values, capacity=capacity)

    @classmethod
    def adopt(cls, entry):
        """The instance a control process that died left in shared memory (its
        registry entry, server.py take_over): tables, configuration and counters
        attached as they are, the translator rebuilt from the last published
        configuration. The dataplane is resumed separately (resume_dataplane)."""
        from jool.control.configblock import pool4_from_document
        self = cls.__new__(cls)
        self.name = entry["name"]
        self.framework = entry["framework"]
        self.queue_base = entry.get("queue_base")
        self.workers = None
        self.tables = Tables.attach(entry["tables"])
        try:
            self.config = ConfigBlock.attach(entry["tables"] + "-config")
            self.counters = CounterBlock.attach(entry["tables"] + "-counters")
            _generation, doc = self.config.read()
            values = glb.defaults(None)
            for key, value in doc["globals"].items():
                values[key] = glb.parse_json(key, value)
            self.values = values
            self.translator = Translator(tables=self.tables, counters=self.counters.row(0),
                                         **glb.translator_kwargs(values))
            self.translator.set_pool4(pool4_from_document(doc))
        except Exception:
            self.release()
            raise
        return self

    def resume_dataplane(self, entry, net_name):
        """Re-asserts the kernel's side (claim rules, hand-back pair: both
        idempotent) and takes the running workers over; the ones that died
        meanwhile are started again. Returns how many were adopted."""
        from jool.control.workers import WorkerPool
        self.interfaces = list(entry.get("interfaces") or [])
        pool = entry.get("pool") or {}
        if self.framework == "netfilter" and not self.interfaces:
            return 0
        if self.framework == "netfilter":
            self._claim()
        pids = pool.get("workers") or []
        self.workers = WorkerPool(self.config.name, self.counters.name, self.interfaces,
                                  count=len(pids) or None, net_name=net_name,
                                  queue_base=self.queue_base,
                                  fanout_group=pool.get("fanout_group"))
        return self.workers.adopt(pids)

    def takeover_entry(self):
        """What registry.publish records of this instance for a successor."""
        entry = {"name": self.name, "framework": self.framework, "tables": self.tables.name,
                 "queue_base": self.queue_base,
                 "interfaces": list(getattr(self, "interfaces", None) or [])}
        if self.workers is not None:
            entry["pool"] = self.workers.describe()
        return entry

    def release(self):
        """Lets go of the shared segments without removing them (a failed takeover)."""
        for part in ("counters", "config", "tables"):
            block = getattr(self, part, None)
            if block is not None:
                self.translator = None
                block.close()
                setattr(self, part, None)

    def close(self):
        if self._sync is not None and self._sync.link is not None:
            self._sync.link.close()
        self._sync = None
        workers = getattr(self, "workers", None)
        config = getattr(self, "config", None)
        if config is not None:
            config.retire()             # also stops workers nobody can signal
        if workers is not None:
            workers.stop()
            self.workers = None
        if getattr(self, "claimed", False):
            from jool.control import kernel
            try:
                kernel.remove(self.name)
            except Exception:
                pass
            self.claimed = False
        if getattr(self, "handback", False):
            from jool.control import kernel
            try:
                kernel.remove_handback()
            except Exception:
                pass
            self.handback = False
        counters = getattr(self, "counters", None)
        if counters is not None:
            self.translator = None          # its counters view points into the block
            counters.close()
            counters.unlink()
            self.counters = None
        if config is not None:
            config.close()
            config.unlink()
            self.config = None
        tables = getattr(self, "tables", None)
        if tables is not None:
            tables.close()
            tables.unlink()
            self.tables = None

    # ------------------------------------------------------------ globals

    def global_display(self):
        return [[key, glb.to_json(key, self.values[key])] for key in glb.NAMES]

    def global_update(self, key, value, force=False):
        try:
            key = glb.resolve_key(key)
            candidate = dict(self.values)
            candidate[key] = glb.validate(key, glb.parse_json(key, value), self.values, force)
        except glb.ConfigError as exc:
            raise _config_error(exc) from None
        self._check_bib_in_pool4(self.translator.pool4)     # spec §5.6
        self._apply_values(candidate)
        self.publish()

    def _apply_values(self, values):
        try:
            self.translator.update(**glb.translator_kwargs(values))
        except (ValueError, TypeError) as exc:
            raise ControlError(EINVAL, str(exc)) from None
        self.values = values

    def _check_bib_in_pool4(self, pool4, entries=None):
        """spec §5.6 and config.md §3: every BIB entry's IPv4 transport address must
        belong to pool4 (an empty pool4: port 61001 or above)."""
        for proto in PROTOCOLS:
            rows = self.translator.bib_entries(proto) if entries is None else \
                [e for e in entries if e[0] == proto]
            for row in rows:
                addr4, port4 = (row[2], row[3]) if entries is None else (row[3], row[4])
                ok = port4 >= 61001 if pool4.empty else pool4.contains(proto, addr4, port4)
                if not ok:
                    raise ControlError(EINVAL, f"{proto.upper()} BIB transport address "
                                               f"'{addr4}#{port4}' does not belong to pool4")

    # ------------------------------------------------------------ pool4

    def pool4_display(self, proto):
        proto = _proto(proto)
        rows = []
        for mark, pname, addr, lo, hi, iterations, auto in self.translator.pool4_entries():
            if pname.lower() == proto:
                rows.append([mark, pname, addr, lo, hi, iterations or None, not auto])
        return rows

    def pool4_add(self, proto, prefix, port_min, port_max, mark=0, max_iterations="keep",
                  force=False):
        proto = _proto(proto)
        iterations = _max_iterations(max_iterations)
        try:
            self.translator.pool4_add(proto, prefix, port_min, port_max, mark, iterations)
        except Pool4Error as exc:
            raise ControlError(exc.code, str(exc)) from None
        self.publish()

    def pool4_remove(self, proto, prefix, port_min, port_max, mark=0, quick=False):
        self.translator.set_clock(now_ms())      # its events' time
        try:
            notices = self.translator.pool4_remove(_proto(proto), prefix, port_min, port_max,
                                                   mark, quick)
        except Pool4Error as exc:
            raise ControlError(exc.code, str(exc)) from None
        self.publish()
        return notices

    def pool4_flush(self, quick=False):
        self.translator.set_clock(now_ms())      # its events' time
        notices = self.translator.pool4_flush(quick)
        self.publish()
        return notices

    # ------------------------------------------------------------ BIB and sessions

    def bib_display(self, proto):
        return [list(row) for row in self.translator.bib_entries(_proto(proto))]

    def bib_add(self, proto, addr6, port6, addr4, port4):
        self.translator.set_clock(now_ms())      # its events' time
        try:
            self.translator.bib_add(_proto(proto), addr6, port6, addr4, port4)
        except OSError:
            existing = self._bib_collision(proto, addr6, port6, addr4, port4)
            raise ControlError(EEXIST, f"Entry {addr4}#{port4}|{addr6}#{port6} collides "
                                       f"with {existing}.") from None
        except ValueError as exc:
            raise ControlError(EINVAL, str(exc)) from None

    def _bib_collision(self, proto, addr6, port6, addr4, port4):
        a6 = ipaddress.IPv6Address(addr6)
        a4 = ipaddress.IPv4Address(addr4)
        for e6, p6, e4, p4, _static in self.translator.bib_entries(_proto(proto)):
            if (ipaddress.IPv6Address(e6) == a6 and p6 == port6) or \
                    (ipaddress.IPv4Address(e4) == a4 and p4 == port4):
                return f"{e4}#{p4}|{e6}#{p6}"
        return "another entry"

    def bib_remove(self, proto, addr6=None, port6=None, addr4=None, port4=None):
        self.translator.set_clock(now_ms())      # its events' time
        try:
            return self.translator.bib_remove(_proto(proto), addr6, port6, addr4, port4)
        except OSError:
            raise ControlError(ESRCH, "The entry wasn't in the database.") from None

    def session_display(self, proto):
        return self.translator.sessions(_proto(proto), now_ms())

    def stats(self, userspace=False):
        self.translator.counter_dict()          # refreshes the gauges (row 0)
        totals = self.counters.totals()
        rows = [[name, totals[name]] for name in COUNTER_NAMES]
        if userspace:
            rows += [[name, value] for name, value in self.counters.extension_totals().items()]
        return rows

    def expire(self):
        return self.translator.expire(now_ms())

    # ------------------------------------------------------------ atomic configuration

    def apply_file(self, config, force=False):
        """An atomic configuration file on an existing instance (config.md §3):
        globals and pool4 replaced wholesale, BIB and sessions kept."""
        if config["framework"] != self.framework:
            raise ControlError(EINVAL, "can't change an instance's framework")
        values, pool4, bib = candidate_from_file(config, force)
        if values["pool6"] != self.values["pool6"]:
            raise ControlError(EINVAL, "can't change a NAT64 instance's pool6")
        self._check_bib_in_pool4(pool4, bib)        # the file's own entries are validated
        probe = Translator(**glb.translator_kwargs(values))
        del probe
        self.translator.set_clock(now_ms())
        self.translator.set_pool4(pool4)
        self._apply_values(values)
        self.publish()


def candidate_from_file(config, force=False):
    """Globals at their defaults plus the file's, its pool4 and its static BIB
    entries, all validated; nothing is applied (config.md §3, steps 1-2)."""
    values = glb.defaults(None)
    try:
        for key, value in config.get("global", {}).items():
            values[key] = glb.validate(key, glb.parse_json(key, value), values, force)
    except glb.ConfigError as exc:
        raise _config_error(exc) from None
    if values.get("pool6") is None:
        raise ControlError(EINVAL, "pool6 is mandatory")
    pool4 = Pool4()
    try:
        for entry in config.get("pool4", []):
            iterations = entry.get("max_iterations", "keep")
            mapped = _max_iterations(iterations)
            pool4.add(_proto(entry["proto"]), entry["prefix"], entry["min"], entry["max"],
                      entry.get("mark", 0), None if mapped == "keep" else mapped,
                      set_iterations=mapped != "keep")
    except Pool4Error as exc:
        raise ControlError(exc.code, str(exc)) from None
    bib = [(_proto(b["proto"]), b["addr6"], b["port6"], b["addr4"], b["port4"])
           for b in config.get("bib", [])]
    return values, pool4, bib


def instance_from_file(config, netns, force=False, capacity=DEFAULT_CAPACITY):
    """A new instance from an atomic configuration file, static BIB included."""
    values, pool4, bib = candidate_from_file(config, force)
    for proto, addr6, port6, addr4, port4 in bib:
        ok = port4 >= 61001 if pool4.empty else pool4.contains(proto, addr4, port4)
        if not ok:
            raise ControlError(EINVAL, f"{proto.upper()} BIB transport address "
                                       f"'{addr4}#{port4}' does not belong to pool4")
    inst = Instance(config["instance"], config["framework"], netns, values, pool4, capacity)
    try:
        for proto, addr6, port6, addr4, port4 in bib:
            inst.bib_add(proto, addr6, port6, addr4, port4)
    except ControlError:
        inst.close()
        raise
    return inst
