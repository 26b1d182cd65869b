"""Which instances exist in which namespace, for `jool instance display`.

Abstract sockets are scoped to a network namespace but /run is not: each control
process publishes its instances in /run/jool-userspace/instances/<netns>.json, and
the CLI lists the files whose process is alive.
"""

import json
import os

DEFAULT_REGISTRY_DIR = "/run/jool-userspace/instances"


def registry_dir():
    """Read at each call: tests and special set-ups point JOOL_REGISTRY_DIR elsewhere."""
    return os.environ.get("JOOL_REGISTRY_DIR") or DEFAULT_REGISTRY_DIR


def netns_id():
    """This process's network namespace: the inode of /proc/self/ns/net."""
    return os.stat("/proc/self/ns/net").st_ino


def _path(netns):
    return os.path.join(registry_dir(), f"{netns}.json")


def publish(netns, pid, instances, mirror=None):
    """instances: [{"name", "framework", ...}] (what a successor needs to take
    them over, server.py take_over); an empty list removes the entry."""
    path = _path(netns)
    if not instances:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    os.makedirs(registry_dir(), exist_ok=True)
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": pid, "started": process_start(pid), "netns": netns,
                   "instances": instances, "mirror": mirror}, f)
    os.replace(tmp, path)               # readers never see half a file


def read(netns):
    """The namespace's entry as published, or None."""
    try:
        with open(_path(netns)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def orphaned(netns):
    """True when a control process that died (killed, crashed) left instances
    whose workers still translate: the next control process takes them over. A
    translator that died whole (workers too) is not raised again behind the
    operator's back (a health check that runs `jool` must see it dead); starting
    the control process explicitly still takes its tables over."""
    from jool.control.workers import is_worker_of
    data = read(netns)
    try:
        if not (data and data.get("instances")) or control_alive(data):
            return False
        return any(pid and is_worker_of(int(pid), inst["tables"] + "-config")
                   for inst in data["instances"]
                   for pid in (inst.get("pool") or {}).get("workers") or ())
    except (TypeError, ValueError, KeyError, AttributeError):
        return False


def process_start(pid):
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field
    22): with the pid, it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def control_alive(data):
    """Whether the control process a registry document names still runs (the
    same process: a recycled pid does not count)."""
    try:
        pid = int(data.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if not pid_alive(pid):
        return False
    started = data.get("started")
    return started is None or process_start(pid) == started


def pid_alive(pid):
    """True while process `pid` runs. A zombie does not: a control process that
    was killed stays one until whoever adopted it reaps it, and its instances
    must be taken over meanwhile."""
    if pid <= 0:
        return False                # kill(0, 0) would answer for our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True                 # no /proc to ask: kill() said it exists
    return state not in ("Z", "X")


def entries():
    """[(netns, name, framework)] of every live control process's instances; files
    that cannot be read or parsed are passed over."""
    directory = registry_dir()
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    rows = []
    for fname in names:
        if not fname.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, fname)) as f:
                data = json.load(f)
            if not pid_alive(int(data.get("pid", 0))):
                continue
            netns = int(data["netns"])
            for inst in data.get("instances", []):
                rows.append((netns, str(inst["name"]), str(inst.get("framework", ""))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return rows
