"""The MODE / OPERATION word tree of `jool` and its prefix matching (spec/cli.md §1.2).

A node is a label with either children (a deeper level of words) or a handler name
(an operation).  A typed word selects every visible label of its level that starts
with it; a word equal to a whole label wins even when it is also a prefix of others;
hidden labels (`autocomplete`) match only when typed in full.
"""

import sys

from jool.cli.errors import Exit, EINVAL_EXIT


class Node:
    __slots__ = ("label", "children", "handler", "hidden")

    def __init__(self, label, children=None, handler=None, hidden=False):
        self.label = label
        self.children = children
        self.handler = handler
        self.hidden = hidden

    def __repr__(self):
        return f"Node({self.label!r})"


def global_keys():
    """The NAT64 global keys in display order (jool.config.globals when present)."""
    try:
        from jool.config import globals as gl
    except ImportError:                                 # pragma: no cover
        return list(FALLBACK_GLOBAL_KEYS)
    names = getattr(gl, "NAMES", None)
    return list(names) if names else list(FALLBACK_GLOBAL_KEYS)


# spec/globals.md §1, display order.  Only used when jool.config.globals has no list.
FALLBACK_GLOBAL_KEYS = (
    "manually-enabled", "pool6", "lowest-ipv6-mtu", "logging-debug",
    "zeroize-traffic-class", "override-tos", "tos", "mtu-plateaus",
    "address-dependent-filtering", "drop-externally-initiated-tcp", "drop-icmpv6-info",
    "source-icmpv6-errors-better", "f-args", "handle-rst-during-fin-rcv",
    "tcp-est-timeout", "tcp-trans-timeout", "udp-timeout", "icmp-timeout",
    "logging-bib", "logging-session", "maximum-simultaneous-opens", "ss-enabled",
    "ss-flush-asap", "ss-flush-deadline", "ss-capacity", "ss-max-payload",
)


def build_tree():
    def ops(*names):
        return [Node(n, handler=n) for n in names]

    update_keys = [Node(k, handler="update") for k in global_keys()]
    return [
        Node("instance", ops("display", "add", "remove", "flush", "status")),
        Node("stats", ops("display")),
        Node("global", [Node("display", handler="display"),
                        Node("update", children=update_keys)]),
        Node("pool4", ops("display", "add", "remove", "flush")),
        Node("bib", ops("display", "add", "remove")),
        Node("session", ops("display")),
        Node("file", ops("handle")),
        Node("joold", ops("advertise")),
        Node("autocomplete", handler="autocomplete", hidden=True),
    ]


TREE = None


def tree():
    global TREE
    if TREE is None:
        TREE = build_tree()
    return TREE


def find_matches(nodes, word):
    """The nodes of one level selected by `word` (see the module docstring)."""
    found = []
    for node in nodes or ():
        if node.hidden:
            if node.label == word:
                return [node]
            continue
        if node.label.startswith(word):
            if node.label == word:
                return [node]
            found.append(node)
    return found


def _labels(nodes):
    return "".join(f"{n.label} " for n in nodes if not n.hidden)


def unexpected_token(nodes, word):
    sys.stderr.write(f"Unexpected token: '{word}'\nAvailable options: {_labels(nodes)}\n")
    raise Exit(EINVAL_EXIT)


def ambiguous_token(candidates, word):
    sys.stderr.write(f"Ambiguous token: '{word}'\nAvailable options: {_labels(candidates)}\n")
    raise Exit(EINVAL_EXIT)


def more_arguments_expected(nodes):
    sys.stderr.write(f"More arguments expected.\nPossible follow-ups: {_labels(nodes)}\n")
    raise Exit(EINVAL_EXIT)


def walk(words):
    """Resolve the leading keywords of `words`.

    Returns (path, index): `path` is the list of matched nodes (ending with the node
    that has a handler) and `index` the position in `words` of the word that
    selected that last node (its typed form is argp's program name).
    """
    nodes = tree()
    if not words:
        more_arguments_expected(nodes)
    path = []
    for i, word in enumerate(words):
        found = find_matches(nodes, word)
        if not found:
            unexpected_token(nodes, word)
        if len(found) > 1:
            ambiguous_token(found, word)
        node = found[0]
        path.append(node)
        if node.handler:
            return path, i
        nodes = node.children
    more_arguments_expected(nodes)
