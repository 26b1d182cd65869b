"""Starting, watching and restarting an instance's dataplane workers.

One worker per CPU, each pinned to its CPU, all in one PACKET_FANOUT group per
interface so a flow always reaches the same worker. A worker that dies (killed,
crashed) is restarted at the next check; the tables live in shared memory, so no
session is lost with it.
"""

import logging
import os
import secrets
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


class WorkerPool:
    def __init__(self, config_name, counters_name, interfaces, count=None, net_name=None,
                 queue_base=None):
        self.config_name = config_name
        self.net_name = net_name
        self.queue_base = queue_base
        self.counters_name = counters_name
        self.interfaces = list(interfaces)
        self.count = count or worker_count()
        self.fanout_group = secrets.randbelow(0xff00) + 1    # + interface number
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
