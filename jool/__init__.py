"""A userspace, Jool-compatible stateful NAT64.

Rooms: ``cli`` (the jool/joold front ends), ``config`` (globals and atomic
configuration), ``control`` (the per-namespace control process), ``dataplane``
(AF_PACKET workers), ``sync`` (session synchronization) and ``_fast`` (the Cython
kernels: parsing, RFC 7915 translation, RFC 6052, checksums, the RFC 6146 pipeline).
"""

__version__ = "0.1.0"
JOOL_COMPAT_VERSION = "4.1.9.0"
