"""Client-side value syntaxes (spec/cli.md §1.4) and instance-name validation.

The syntaxes themselves live in jool.config.globals (one implementation for the
CLI, the atomic configuration and the control process); these wrappers turn its
ConfigError into `Error: <message>` on stderr and the matching exit status.
"""

import socket

from jool.cli.errors import error
from jool.config import globals as gl

U32_MAX = gl.U32_MAX


def _call(function, *args):
    try:
        return function(*args)
    except gl.ConfigError as exc:
        error(exc.message, exc.code)


def parse_uint(text, low=0, high=U32_MAX):
    """Decimal; must start with a digit (exit 1); junk after the digits ignored."""
    return _call(gl.parse_uint, text, high, low)


def parse_queue(text):
    """(ours) An NFQUEUE number, 0-65535."""
    return parse_uint(text, 0, 65535)


def parse_port_range(text):
    """`N` or `N-M`; a reversed range is swapped."""
    low, high = _call(gl.parse_port_range, text)
    return (high, low) if high < low else (low, high)


def parse_prefix4(text):
    """→ ("A.B.C.D", LEN)."""
    addr, _, length = _call(gl.parse_prefix4, text).partition("/")
    return addr, int(length)


def parse_prefix6(text):
    """→ "ADDR/LEN" (canonical address text)."""
    return _call(gl.parse_prefix6, text)


def parse_taddr6(text):
    return _call(gl.parse_taddr, text, socket.AF_INET6)


def parse_taddr4(text):
    return _call(gl.parse_taddr, text, socket.AF_INET)


def parse_global(key, text):
    """`global update KEY TEXT` → the value's JSON form for the control protocol."""
    return _call(lambda: gl.to_json(key, gl.parse_cli(key, text)))


def validate_instance_name(name):
    """≤ 15 bytes, each within 0x20..0x7F (spec/cli.md §1.1)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 15 or any(b < 0x20 or b > 0x7F for b in raw):
        error(f"Invalid instance name '{name}': instance names are printable ASCII, "
              "15 characters max.")
    return name
