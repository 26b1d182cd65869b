"""Which instances exist in which namespace, for `jool instance display`.

Abstract sockets are scoped to a network namespace but /run is not: each control
process publishes its instances in /run/jool-userspace/instances/<netns>.json, and
the CLI lists the files whose process is alive.
"""

import json
import os

REGISTRY_DIR = os.environ.get("JOOL_REGISTRY_DIR", "/run/jool-userspace/instances")


def netns_id():
    """This process's network namespace: the inode of /proc/self/ns/net."""
    return os.stat("/proc/self/ns/net").st_ino


def _path(netns):
    return os.path.join(REGISTRY_DIR, f"{netns}.json")


def publish(netns, pid, instances):
    """instances: [{"name", "framework"}]; an empty list removes the entry."""
    path = _path(netns)
    if not instances:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    os.makedirs(REGISTRY_DIR, exist_ok=True)
    tmp = f"{path}.{pid}.tmp"
    with open(tmp, "w") as f:
        json.dump({"pid": pid, "netns": netns, "instances": instances}, f)
    os.replace(tmp, path)               # readers never see half a file


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def entries():
    """[(netns, name, framework)] of every live control process."""
    rows = []
    try:
        names = sorted(os.listdir(REGISTRY_DIR))
    except FileNotFoundError:
        return rows
    for fname in names:
        if not fname.endswith(".json"):
            continue
        try:
            with open(os.path.join(REGISTRY_DIR, fname)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if not _alive(int(data.get("pid", 0))):
            continue
        for inst in data.get("instances", []):
            rows.append((int(data["netns"]), inst["name"], inst["framework"]))
    return rows
