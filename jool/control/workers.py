"""Starting, watching and restarting an instance's dataplane workers.

One worker per CPU, each pinned to its CPU, all in one PACKET_FANOUT group per
interface so a flow always reaches the same worker. A worker that dies (killed,
crashed) is restarted at the next check; the tables live in shared memory, so no
session is lost with it.
"""

import logging
import os
import secrets
import signal
import time

import multiprocess

log = logging.getLogger("jool.control")


def _worker_entry(*args, **kwargs):
    from jool.dataplane.worker import main
    main(*args, **kwargs)


def worker_count():
    """One worker per CPU the control process may run on, unless JOOL_WORKERS (in
    its environment) says otherwise."""
    try:
        wanted = int(os.environ.get("JOOL_WORKERS") or 0)
    except ValueError:
        wanted = 0
    return max(1, min(wanted, 64)) if wanted > 0 else len(os.sched_getaffinity(0))


def is_worker_of(pid, config_name):
    """True when process `pid` lives and maps the instance's configuration block:
    a worker of that instance, not a stranger that got a recycled pid."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(line.rstrip().endswith(f"/{config_name}") for line in f)
    except OSError:
        return False


class AdoptedWorker:
    """A worker started by a control process that died (server.py take_over). It
    is not our child, so it is watched through /proc, and the init process (or a
    subreaper) reaps it."""

    def __init__(self, pid, config_name):
        self.pid = pid
        self.config_name = config_name
        self.exitcode = None

    def is_alive(self):
        from jool.control.registry import pid_alive
        return pid_alive(self.pid) and is_worker_of(self.pid, self.config_name)

    def _signal(self, signum):
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def terminate(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)

    def join(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)


class WorkerPool:
    def __init__(self, config_name, counters_name, interfaces, count=None, net_name=None,
                 queue_base=None, fanout_group=None):
        self.config_name = config_name
        self.net_name = net_name
        self.queue_base = queue_base
        self.counters_name = counters_name
        self.interfaces = list(interfaces)
        self.count = count or worker_count()
        # + interface number; an adopted pool keeps its workers' group, so that
        # the ones it restarts share the flows with those still running.
        self.fanout_group = fanout_group or secrets.randbelow(0xff00) + 1
        self.ctx = multiprocess.get_context("spawn")
        self.procs = [None] * self.count
        self.started = [0.0] * self.count
        self.failures = [0] * self.count
        self.restarts = 0

    def _spawn(self, i):
        cpus = sorted(os.sched_getaffinity(0))
        proc = self.ctx.Process(
            target=_worker_entry, name=f"jool-worker-{i}", daemon=True,
            args=(self.config_name, self.counters_name, i, self.interfaces, self.fanout_group),
            kwargs={"cpu": cpus[i % len(cpus)], "net_name": self.net_name,
                    "queue_base": self.queue_base})
        proc.start()
        self.procs[i] = proc
        self.started[i] = time.monotonic()
        log.info("worker %d started (pid %d) on %s", i, proc.pid, ",".join(self.interfaces))

    def start(self):
        for i in range(self.count):
            self._spawn(i)

    def adopt(self, pids):
        """Takes over the workers a dead control process left running (their pids,
        by worker index); the missing ones are started. Returns how many were
        adopted."""
        adopted = 0
        for i in range(self.count):
            pid = pids[i] if i < len(pids) else None
            if pid and is_worker_of(pid, self.config_name):
                self.procs[i] = AdoptedWorker(pid, self.config_name)
                self.started[i] = time.monotonic()
                adopted += 1
                log.info("worker %d (pid %d) adopted", i, pid)
            else:
                self._spawn(i)
        return adopted

    def check(self):
        """Restarts every worker that is no longer alive; returns how many."""
        restarted = 0
        now = time.monotonic()
        for i, proc in enumerate(self.procs):
            if proc is None or proc.is_alive():
                continue
            # One that dies at start-up again and again waits longer each time
            # (up to 30 s) instead of spinning; one that ran a while restarts at once.
            if now - self.started[i] < 5.0:
                self.failures[i] += 1
            else:
                self.failures[i] = 0
            delay = min(30.0, 0.5 * (2 ** self.failures[i])) if self.failures[i] > 1 else 0.0
            if now - self.started[i] < delay:
                continue
            log.warning("worker %d (pid %d) died with %s; restarting", i, proc.pid,
                        proc.exitcode)
            proc.join(0)
            self._spawn(i)
            restarted += 1
        self.restarts += restarted
        return restarted

    def pids(self):
        return [p.pid for p in self.procs if p is not None]

    def describe(self):
        """What a successor needs to take these workers over (registry.py)."""
        return {"workers": [p.pid if p is not None else None for p in self.procs],
                "fanout_group": self.fanout_group}

    def stop(self, timeout=3.0):
        for proc in self.procs:
            if proc is not None and proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                proc.join(timeout)
                if proc.is_alive():
                    proc.kill()
                    proc.join(1.0)
        self.procs = [None] * self.count

    def wait_generation(self, counters, generation, timeout=2.0):
        """Returns once every live worker applies `generation` (its acknowledgement
        in slot 0 of its counter row), so that a `jool` command's change is in
        effect when the command returns; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [i for i, p in enumerate(self.procs)
                       if p is not None and p.is_alive() and counters.row(i + 1)[0] < generation]
            if not pending:
                return True
            time.sleep(0.005)
        log.warning("workers %s did not apply configuration generation %d in %.1f s",
                    pending, generation, timeout)
        return False
