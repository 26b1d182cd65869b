"""systemd units for the control process and joold, one instance per network
namespace (the unit's instance parameter is the namespace's name under
/run/netns), and the readiness notification the control unit waits for.

    tools/install-units [--unit-dir DIR] [--python PATH] [--no-reload]

writes jool-control@.service and joold@.service with the absolute paths of this
Python and of this checkout, so they run the code they were installed from.
Nothing is installed unless that command is run.
"""

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_UNIT_DIR = "/etc/systemd/system"
# Directories systemd reads system units from: installing elsewhere (a test, a
# staging tree) needs no daemon-reload.
SYSTEM_UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system",
                    "/lib/systemd/system", "/usr/local/lib/systemd/system")

# %i is the namespace's name; /etc/jool/%i holds its optional files.
CONTROL_UNIT = """\
[Unit]
Description=jool-userspace NAT64 control process of network namespace %i
Documentation=file://{root}/README.md
After=network-online.target
Wants=network-online.target
# The namespace is made beforehand (ip netns add %i; for the host's own:
# ip netns attach %i 1).
ConditionPathExists=/run/netns/%i

[Service]
Type=notify
NetworkNamespacePath=/run/netns/%i
Environment=PYTHONPATH={root}
# Never let a jool command of this unit start a control process outside it.
Environment=JOOL_CONTROL_COMMAND=false
# Optional: JOOL_METRICS_LISTEN=ADDRESS:PORT, JOOL_WORKERS=N, JOOL_TABLE_CAPACITY=N.
EnvironmentFile=-/etc/jool/%i/control.env
ExecStart={python} -m jool.control --foreground --persist
# Optional: the instance's atomic configuration (jool file handle), applied once
# the control process is ready; after a restart it finds the instance taken over.
ExecStartPost=/bin/sh -c 'if [ -e /etc/jool/%i/jool.conf ]; then exec {python} -m jool.cli.jool file handle /etc/jool/%i/jool.conf; fi'
# SIGTERM to the control process alone: it stops its workers itself. When it
# dies instead, its workers go on translating and the restarted one adopts them,
# so they must not be killed with it.
KillMode=process
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

JOOLD_UNIT = """\
[Unit]
Description=jool-userspace session synchronization daemon (joold) of network namespace %i
Documentation=file://{root}/README.md
Requires=jool-control@%i.service
After=jool-control@%i.service
ConditionPathExists=/etc/jool/%i/netsocket.json
ConditionPathExists=/etc/jool/%i/modsocket.json

[Service]
Type=simple
NetworkNamespacePath=/run/netns/%i
Environment=PYTHONPATH={root}
Environment=JOOL_CONTROL_COMMAND=false
WorkingDirectory=/etc/jool/%i
ExecStart={python} -m jool.cli.joold /etc/jool/%i/netsocket.json /etc/jool/%i/modsocket.json
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

UNITS = {"jool-control@.service": CONTROL_UNIT, "joold@.service": JOOLD_UNIT}


def render_units(python=None, root=ROOT):
    """{file name: text} of the units for this Python and checkout."""
    python = os.path.abspath(python or sys.executable)
    return {name: text.format(python=python, root=os.path.abspath(root))
            for name, text in UNITS.items()}


def systemd_running():
    """sd_booted(3): systemd is the init system of this machine."""
    return os.path.isdir("/run/systemd/system")


def install(unit_dir=DEFAULT_UNIT_DIR, python=None, reload=True):
    """Writes the units; returns their paths. daemon-reload only when systemd
    runs and reads unit_dir."""
    unit_dir = Path(unit_dir)
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_units(python).items():
        path = unit_dir / name
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        temporary.chmod(0o644)
        temporary.replace(path)         # never a half-written unit
        written.append(path)
    if reload and systemd_running() and str(unit_dir.resolve()) in SYSTEM_UNIT_DIRS:
        subprocess.run(["systemctl", "daemon-reload"], check=True, timeout=60)
    return written


def notify_ready():
    """Tells systemd (Type=notify) that the control socket is listening, when
    started by it ($NOTIFY_SOCKET); nothing otherwise."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]        # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1\nSTATUS=listening", address)
    except OSError:
        return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="tools/install-units",
        description="Install the systemd units jool-control@.service and joold@.service "
                    "(instance: a network namespace name under /run/netns).")
    ap.add_argument("--unit-dir", default=DEFAULT_UNIT_DIR,
                    help=f"where to write them (default {DEFAULT_UNIT_DIR})")
    ap.add_argument("--python", default=sys.executable,
                    help="the Python interpreter the units run (default: this one)")
    ap.add_argument("--no-reload", action="store_true",
                    help="do not run systemctl daemon-reload")
    args = ap.parse_args(argv)
    for path in install(args.unit_dir, args.python, reload=not args.no_reload):
        print(f"wrote {path}")
    print("then: ip netns add NS; systemctl enable --now jool-control@NS.service "
          "(and joold@NS.service with /etc/jool/NS/netsocket.json and modsocket.json)")
    return 0
