"""JOOL_SHM_DIR end to end (jool(8), ENVIRONMENT): an instance's tables on a tmpfs
of 2 MB pages, mounted here, as large tables want them. The control process
creates the segment there, its workers translate through it, and `instance
remove` takes it away again; nothing of the tables goes to /dev/shm."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from netns_support import running_lab

PEER4_VIA_POOL6 = "64:ff9b::192.0.2.5"


def segments(directory, inode):
    return sorted(n for n in os.listdir(directory) if n.startswith(f"jool64-{inode}-"))


def mapping_of(pid, path):
    """The smaps fields of pid's mapping of path ({} when it has none)."""
    fields, inside = {}, False
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                head = line.split()
                if "-" in head[0] and len(head) >= 5:     # a mapping's first line
                    if inside:
                        break
                    inside = len(head) == 6 and head[5] == path
                elif inside and head[0].endswith(":") and len(head) >= 2 and head[1].isdigit():
                    fields[head[0][:-1]] = int(head[1])
    except OSError:
        return {}
    return fields


@pytest.fixture
def huge_tmpfs():
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    if shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs ip and nft")
    where = tempfile.mkdtemp(prefix="jool-shm-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "huge=always,size=256M", "tmpfs",
                              where], capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(where)
        pytest.skip(f"cannot mount a tmpfs with huge=always: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], capture_output=True)
        os.rmdir(where)


def test_tables_live_in_jool_shm_dir(huge_tmpfs):
    env = {"JOOL_SHM_DIR": huge_tmpfs, "JOOL_TABLE_CAPACITY": "65536"}
    with running_lab("shm", jool_env=env) as lab:
        inode = lab.inode("jool")
        [name] = segments(huge_tmpfs, inode)
        assert not os.path.exists(os.path.join("/dev/shm", name))

        ping = lab.exec("n6", "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2",
                        PEER4_VIA_POOL6, timeout=10)
        assert " 3 received" in ping.stdout, ping.stdout + ping.stderr
        shown = lab.jool("session", "display", "--icmp", "--numeric", "--csv", check=True)
        assert "2001:db8::" in shown.stdout and "192.0.2.5" in shown.stdout, shown.stdout

        # Every process of the instance maps that one file, in 2 MB pages where the
        # kernel can (the control process wrote its header and indexes).
        path = os.path.join(huge_tmpfs, name)
        mapped = {int(pid): mapping_of(pid, path) for pid in os.listdir("/proc")
                  if pid.isdigit()}
        mapped = {pid: fields for pid, fields in mapped.items() if fields}
        assert len(mapped) >= 2, mapped                 # the control process and a worker
        assert any(fields.get("ShmemPmdMapped", 0) > 0 for fields in mapped.values()), mapped

        removed = lab.jool("instance", "remove")
        assert removed.returncode == 0, removed.stderr
        deadline = time.monotonic() + 5
        while segments(huge_tmpfs, inode) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert segments(huge_tmpfs, inode) == []
