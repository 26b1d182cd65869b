"""Reading Jool's graybox manifest and comparing packets under its matching rules
(shared/graybox/README.md)."""

import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    group: str
    direction: str          # "64": sent from n6, expected at n4; "46": the reverse
    send: bytes
    expect: bytes
    ignore: frozenset
    name: str


def rows(shared: Path):
    base = shared / "graybox" / "nat64"
    for line in (base / "manifest.tsv").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("group\t"):
            continue
        group, direction, send, expect, ignore, _wait, _pre, _post, name = line.split("\t")
        yield Row(group, direction, (base / send).read_bytes(), (base / expect).read_bytes(),
                  frozenset() if ignore == "-" else frozenset(int(x) for x in ignore.split(",")),
                  name)


def ipv4_header_checksum_ok(packet: bytes) -> bool:
    ihl = (packet[0] & 0xF) * 4
    total = sum(struct.unpack(f"!{ihl // 2}H", packet[:ihl]))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def mismatches(got: bytes, want: bytes, ignore: frozenset):
    """Byte offsets where got differs from want, under the README's rules."""
    ignore = set(ignore)
    if want[0] >> 4 == 4 and want[4:6] == b"\0\0" and 4 in ignore:
        # An expected ID of 0 means any ID, but then the header checksum must hold.
        if not ipv4_header_checksum_ok(got):
            return ["ipv4-header-checksum"]
    bad = [i for i in range(max(len(got), len(want)))
           if i not in ignore and (i >= len(got) or i >= len(want) or got[i] != want[i])]
    return bad
