"""`joold`: the session-synchronization daemon's front end (spec/config.md §5).

    joold [NETSOCKET_FILE [MODSOCKET_FILE]]

NETSOCKET_FILE (default ./netsocket.json) says where the multicast group is;
MODSOCKET_FILE, read only when given, names the instance (default "default").
The daemon itself is jool/sync/daemon.py.

Our one extension to the files: "x-shared-key-file" in NETSOCKET_FILE (members
4.1.9 does not know are ignored by it, so the same file still works there)
names a file holding a key shared by every node; joold then signs what it sends
and drops what does not verify (jool/sync/signing.py).
"""

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys

from jool import __version__


class JooldConfigError(ValueError):
    pass


def build_parser():
    ap = argparse.ArgumentParser(
        prog="joold",
        description="Synchronizes the sessions of a NAT64 instance with the joold daemons "
                    "of other translators over UDP multicast (Jool 4.1.9's joold).")
    ap.add_argument("netsocket", nargs="?", default="netsocket.json", metavar="NETSOCKET_FILE",
                    help="JSON: multicast address, multicast port, in interface, "
                         "out interface, reuseaddr, ttl, and our extension "
                         "x-shared-key-file (default: ./netsocket.json)")
    ap.add_argument("modsocket", nargs="?", default=None, metavar="MODSOCKET_FILE",
                    help='JSON: {"instance": NAME}; without it the instance is "default"')
    ap.add_argument("-V", "--version", action="version", version=f"joold {__version__}")
    return ap


def load_netsocket(path):
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise JooldConfigError(f"{path}: the root must be a JSON object")
    for key in ("multicast address", "multicast port"):
        if key not in doc:
            raise JooldConfigError(f"{path}: '{key}' is mandatory")
    try:
        group = ipaddress.ip_address(doc["multicast address"])
    except (TypeError, ValueError):
        raise JooldConfigError(f"{path}: 'multicast address' is not an IP address") from None
    if not group.is_multicast:
        raise JooldConfigError(f"{path}: {group} is not a multicast address")
    port = doc["multicast port"]
    if not isinstance(port, str):
        raise JooldConfigError(f"{path}: 'multicast port' must be a string (quote it)")
    if not port.isdigit():
        try:
            port = str(socket.getservbyname(port, "udp"))
        except OSError:
            raise JooldConfigError(f"{path}: unknown service '{port}'") from None
    for key in ("reuseaddr", "ttl"):
        if key in doc and (not isinstance(doc[key], int) or isinstance(doc[key], bool)):
            raise JooldConfigError(f"{path}: '{key}' must be an integer")
    net = dict(doc, **{"multicast port": int(port)})
    if KEY_FILE in doc:
        key_file = doc[KEY_FILE]
        if not isinstance(key_file, str) or not key_file:
            raise JooldConfigError(f"{path}: '{KEY_FILE}' must be a file name (a string)")
        # Relative to the netsocket file, so the pair can move together.
        net[KEY_FILE] = os.path.join(os.path.dirname(os.path.abspath(path)), key_file)
    return net


KEY_FILE = "x-shared-key-file"      # our extension (see the module's docstring)


def load_shared_key(net):
    """The shared key named by the netsocket file, or None without one."""
    path = net.get(KEY_FILE)
    if path is None:
        return None
    from jool.sync.signing import load_key_file
    try:
        key = load_key_file(path)
    except OSError as exc:
        raise JooldConfigError(f"{KEY_FILE}: {exc}") from None
    except ValueError as exc:
        raise JooldConfigError(str(exc)) from None
    if os.stat(path).st_mode & 0o077:
        print(f"joold: warning: {path} is readable by others than its owner; "
              "anyone who reads it can forge sessions", file=sys.stderr)
    return key


def load_modsocket(path):
    if path is None:
        return {"instance": "default"}
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise JooldConfigError(f"{path}: the root must be a JSON object")
    return {"instance": doc.get("instance", "default")}


NOTICE = """joold: session synchronization daemon for instance '{instance}'.
joold: multicast group {group}, port {port}{signed}.
joold: from now on, messages go to syslog (ident joold, facility daemon).
joold: stop it with SIGTERM or Ctrl-C."""


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        net = load_netsocket(args.netsocket)
        key = load_shared_key(net)
        mod = load_modsocket(args.modsocket)
    except (OSError, ValueError) as exc:
        print(f"joold: {exc}", file=sys.stderr)
        print("joold error: 1", file=sys.stderr)
        return 1
    from jool.sync.daemon import Joold, SetupError, setup_logging
    try:
        daemon = Joold(net, mod["instance"], key=key)
    except SetupError as exc:
        print(f"joold: {exc}", file=sys.stderr)
        print(f"joold error: {exc.code}", file=sys.stderr)
        return exc.code
    print(NOTICE.format(instance=mod["instance"], group=net["multicast address"],
                        port=net["multicast port"],
                        signed="; datagrams signed with the shared key" if key else ""),
          flush=True)
    setup_logging()
    signal.signal(signal.SIGTERM, lambda *_: setattr(daemon, "running", False))
    try:
        daemon.run()
    except KeyboardInterrupt:
        pass
    finally:
        daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
