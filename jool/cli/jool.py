"""`jool`: the NAT64 command-line client (spec/cli.md).

    jool [ARGP1...] MODE OPERATION [ARGP2...]

ARGP1 (`-i`, `-f`, `--help`, `--version`, `--usage`) is read getopt-style up to the
first non-option word; MODE and OPERATION are prefix-matched keywords
(jool.cli.keywords); ARGP2 is parsed per operation with argp's conventions
(jool.cli.argp).  Requests go to the namespace's control process
(jool.cli.client); answers are printed by jool.cli.printers.
"""

import argparse
import sys

from jool.cli import argp, client, keywords, printers, values
from jool.cli.argp import Opt, Spec
from jool.cli.errors import (E2BIG_EXIT, ESRCH_EXIT, Exit, error, missing,
                             warning)
from jool.cli.stats_doc import EXPLANATIONS

PROG = "jool"
VERSION = argp.VERSION

# ---------------------------------------------------------------------------
# Option declarations (shared by the argp work-alike and build_parsers())
# ---------------------------------------------------------------------------

CSV = Opt("csv", doc="Print in CSV format")
NO_HEADERS = Opt("no-headers", doc="Do not print table headers")
NUMERIC = Opt("numeric", doc="Do not resolve names (print addresses and ports as numbers)")
FORCE = Opt("force", "f", doc="Ignore warnings")
QUICK = Opt("quick", "q", doc="Do not cascade removal to BIB entries")


def protocol_opts(verb):
    return [Opt("tcp", "t", doc=f"{verb} the TCP table"),
            Opt("udp", "u", doc=f"{verb} the UDP table"),
            Opt("icmp", "i", doc=f"{verb} the ICMP table")]


SPECS = {
    ("instance", "display"): Spec(
        [CSV, NO_HEADERS], doc="Print the NAT64 instances of every network namespace."),
    ("instance", "add"): Spec(
        [Opt("iptables", doc="Sit the instance on top of iptables (the JOOL target)"),
         Opt("netfilter", doc="Sit the instance on top of Netfilter (the default)"),
         Opt("pool6", "6", arg="<IPv6 prefix>", doc="The instance's IPv6 prefix (pool6)"),
         Opt("queue", arg="<number>",
             doc="(ours) --iptables: the first NFQUEUE number; worker i reads queue "
                 "<number>+i (default 64)")],
        args_doc="[<instance name>]", doc="Create a NAT64 instance in this namespace."),
    ("instance", "remove"): Spec(
        [], args_doc="[<instance name>]", doc="Delete an instance of this namespace."),
    ("instance", "flush"): Spec(
        [], doc="Delete every NAT64 instance of this namespace."),
    ("instance", "status"): Spec(
        [], doc="Tell whether the instance exists."),
    ("stats", "display"): Spec(
        [Opt("all", "a", doc="Print all the counters, zeros included"),
         Opt("explain", "e", doc="Print an explanation of each counter"),
         CSV, NO_HEADERS,
         Opt("userspace", doc="Also print this implementation's own counters (JOOL_DP_* "
                              "of the dataplane, JOOL_SS_* of session synchronization); "
                              "an extension, not in Jool"),
         Opt("openmetrics",
             doc="Print the counters (per worker), table sizes, pool4 use and sync "
                 "figures in the OpenMetrics text format instead, what the control "
                 "process's HTTP endpoint serves; the other flags are ignored. An "
                 "extension, not in Jool")],
        doc="Print the instance's counters."),
    ("global", "display"): Spec(
        [CSV, NO_HEADERS], doc="Print the instance's global configuration."),
    ("global", "update"): Spec(
        [FORCE], args_doc="<value>", doc="Change one global configuration value."),
    ("pool4", "display"): Spec(
        protocol_opts("Print") + [NO_HEADERS, CSV], doc="Print one table of pool4."),
    ("pool4", "add"): Spec(
        protocol_opts("Add the entry to")
        + [Opt("mark", arg="<integer>", doc="Only packets carrying this mark use the entry"),
           Opt("max-iterations", arg="(<integer>|auto|infinity)",
               doc="Bound of the RFC 6056 search for a free transport address"),
           FORCE],
        args_doc="<IPv4 prefix> <port range>", doc="Add addresses to pool4."),
    ("pool4", "remove"): Spec(
        protocol_opts("Remove the entry from")
        + [Opt("mark", arg="<integer>", doc="Only remove entries of this mark"), QUICK],
        args_doc="<IPv4 prefix> [<port range>]", doc="Remove addresses from pool4."),
    ("pool4", "flush"): Spec(
        [QUICK], doc="Empty pool4."),
    ("bib", "display"): Spec(
        protocol_opts("Print") + [NUMERIC, CSV, NO_HEADERS], doc="Print one BIB table."),
    ("bib", "add"): Spec(
        protocol_opts("Add the entry to"),
        args_doc="<IPv6 transport address> <IPv4 transport address>",
        doc="Add a static BIB entry."),
    ("bib", "remove"): Spec(
        protocol_opts("Remove the entry from"),
        args_doc="[<IPv6 transport address>] [<IPv4 transport address>]",
        doc="Remove a BIB entry."),
    ("session", "display"): Spec(
        protocol_opts("Print") + [NUMERIC, CSV, NO_HEADERS],
        doc="Print one session table."),
    ("file", "handle"): Spec(
        [FORCE], args_doc="<file>", doc="Apply an atomic configuration file."),
}

PROTOCOLS = ("tcp", "udp", "icmp")


# ---------------------------------------------------------------------------
# Top-level help
# ---------------------------------------------------------------------------

def usage_text():
    return (f"{PROG} (\n"
            "        [<ARGP1>] <MODE> <OPERATION> [<ARGP2>]\n"
            "        | (-?|--help)\n"
            "        | (-V|--version)\n"
            "        | --usage\n"
            ")\n")


def help_text():
    out = ["Usage", "=====", usage_text(), "<ARGP1>", "=======",
           "(--instance|-i) <NAME>: the instance to act on (default: 'default').",
           "(--file|-f) <FILE>: take the instance name from the 'instance' member of",
           "    the atomic configuration file <FILE>.", "",
           "<MODE> -> <OPERATION>s", "======================="]
    for mode in keywords.tree():
        if mode.hidden:
            continue
        out.append(f"- {mode.label} -> " + "".join(f"{op.label} " for op in mode.children))
    out += ["", "<ARGP2>", "=======",
            "Depends on <MODE> and <OPERATION>; see each operation's --help.",
            f"(Example: {PROG} pool4 add --help)", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# ARGP1
# ---------------------------------------------------------------------------

ARGP1_LONG = (("help", False, "?"), ("version", False, "V"), ("usage", False, "usage"),
              ("instance", True, "i"), ("file", True, "f"))


def _config_call(function, *args):
    """Run a jool.config function; its ConfigError becomes `Error: ...` + its status."""
    from jool.config.globals import ConfigError
    try:
        return function(*args)
    except ConfigError as exc:
        error(exc.message, exc.code)


def instance_from_file(path):
    """-f FILE: the root `instance` string (key matched case-insensitively)."""
    from jool.config import atomic
    return _config_call(atomic.instance_from_file, path)


class _Argp1Error(Exception):
    pass


def parse_argp1(argv):
    """getopt_long("+?Vi:f:"): returns (action, instance, index of the MODE word).
    action: None (go on), or "help"/"version"/"usage" to print and exit 0."""
    iname = None
    i = 0

    def bad(message):
        sys.stderr.write(f"{PROG}: {message}\n")
        raise _Argp1Error()

    while i < len(argv):
        word = argv[i]
        if word == "--":
            return None, iname, i + 1
        if not word.startswith("-") or word == "-":
            break
        if word.startswith("--"):
            label, eq, inline = word[2:].partition("=")
            exact = [o for o in ARGP1_LONG if o[0] == label]
            found = exact or [o for o in ARGP1_LONG if o[0].startswith(label)]
            if not found:
                bad(f"unrecognized option '{word}'")
            if len(found) > 1:
                bad(f"option '--{label}' is ambiguous; possibilities:"
                    + "".join(f" '--{o[0]}'" for o in found))
            name, takes_arg, key = found[0]
            if not takes_arg:
                if eq:
                    bad(f"option '--{name}' doesn't allow an argument")
                value = None
            elif eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                bad(f"option '--{name}' requires an argument")
            pairs = [(key, value)]
        else:
            pairs = []
            j = 1
            while j < len(word):
                char = word[j]
                if char in "?V":
                    pairs.append((char, None))
                    j += 1
                    continue
                if char in "if":
                    if j + 1 < len(word):
                        pairs.append((char, word[j + 1:]))
                    elif i + 1 < len(argv):
                        i += 1
                        pairs.append((char, argv[i]))
                    else:
                        bad(f"option requires an argument -- '{char}'")
                    break
                bad(f"invalid option -- '{char}'")
        for key, value in pairs:
            if key == "?":
                return "help", iname, i
            if key == "V":
                return "version", iname, i
            if key == "usage":
                return "usage", iname, i
            if key == "i":
                iname = value
            elif key == "f":
                iname = instance_from_file(value)
        i += 1
    return None, iname, i


# ---------------------------------------------------------------------------
# Command context
# ---------------------------------------------------------------------------

class Context:
    def __init__(self, iname):
        self.iname = iname

    def instance(self):
        """The instance the command acts on; -i "" counts as `default`."""
        name = self.iname if self.iname else "default"
        return values.validate_instance_name(name)

    def request(self, op, start=False, **args):
        """Send; print a translator error and exit with its status on failure."""
        req = {"op": op}
        req.update(args)
        try:
            answer = client.call(req, start=start)
        except client.Unreachable as exc:
            unreachable(str(exc))
        status = answer.get("status", 0)
        if status:
            messages = answer.get("messages") or []
            text = "\n".join(str(m) for m in messages)
            sys.stderr.write(f"Error: The kernel module returned error {status}: {text}\n")
            raise Exit(status)
        return answer.get("data")


def unreachable(reason):
    sys.stderr.write("Error: The translator's control process cannot be reached "
                     f"({reason}).\n")
    raise Exit(ESRCH_EXIT)


class Args:
    """Collects the options of one operation."""

    def __init__(self):
        self.flags = set()
        self.values = {}
        self.proto = None
        self.positionals = []

    def __contains__(self, key):
        return key in self.flags


def parse_op(ctx, name, args, spec, on_arg=None, value_parsers=None, protocols=False):
    result = Args()
    value_parsers = value_parsers or {}

    def on_option(key, value):
        if protocols and key in PROTOCOLS:
            if result.proto is not None:
                error("Only one protocol is allowed per request.")
            result.proto = key
            return
        if key in value_parsers:
            result.values[key] = value_parsers[key](value)
            return
        result.flags.add(key)

    argp.parse(name, args, spec, on_option, on_arg)
    return result


def last_positional(store):
    def on_arg(word):
        store["value"] = word
        return True
    return on_arg


# ---------------------------------------------------------------------------
# instance
# ---------------------------------------------------------------------------

def cmd_instance_display(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["instance", "display"])
    if ctx.iname is not None:
        warning("instance display ignores the instance name argument.")
    rows = client.registry_entries()
    sys.stdout.write(printers.instance_table(rows, csv="csv" in a,
                                             headers="no-headers" not in a))


def _named_instance(ctx, positional):
    if positional is not None and ctx.iname is not None and positional != ctx.iname:
        error("You entered two different instance names. Please delete one of them.")
    if positional is not None:
        name = positional
    elif ctx.iname is not None:
        name = ctx.iname
    else:
        name = "default"
    return values.validate_instance_name(name)


def cmd_instance_add(ctx, name, args):
    store = {"value": None}
    a = parse_op(ctx, name, args, SPECS["instance", "add"], on_arg=last_positional(store),
                 value_parsers={"pool6": values.parse_prefix6, "queue": values.parse_queue})
    if "iptables" in a and "netfilter" in a:
        error("The --netfilter and --iptables flags are mutually exclusive; "
              "please choose one framework.")
    framework = "iptables" if "iptables" in a else "netfilter"
    instance = _named_instance(ctx, store["value"])
    queue = a.values.get("queue")
    if queue is not None and framework != "iptables":
        error("--queue only applies to --iptables instances.")
    extra = {} if queue is None else {"queue": queue}
    ctx.request("instance.add", start=True, instance=instance, framework=framework,
                pool6=a.values.get("pool6"), **extra)


def cmd_instance_remove(ctx, name, args):
    store = {"value": None}
    parse_op(ctx, name, args, SPECS["instance", "remove"], on_arg=last_positional(store))
    instance = _named_instance(ctx, store["value"])
    ctx.request("instance.remove", instance=instance)


def cmd_instance_flush(ctx, name, args):
    parse_op(ctx, name, args, SPECS["instance", "flush"])
    if ctx.iname is not None:
        warning("instance flush ignores the instance name argument.")
    ctx.request("instance.flush")


def cmd_instance_status(ctx, name, args):
    parse_op(ctx, name, args, SPECS["instance", "status"])
    instance = ctx.instance()
    try:
        answer = client.call({"op": "instance.status", "instance": instance})
    except client.Unreachable as exc:
        sys.stdout.write("Dead\n")
        sys.stdout.flush()
        unreachable(str(exc))
    status = answer.get("status", 0)
    if status:
        sys.stdout.write("Status unknown\n")
        sys.stdout.flush()
        text = "\n".join(str(m) for m in answer.get("messages") or [])
        sys.stderr.write(f"Error: The kernel module returned error {status}: {text}\n")
        raise Exit(status)
    if answer.get("data") == "Running":
        sys.stdout.write("Running\n")
    else:
        sys.stdout.write(f"Dead\n(Instance '{instance}' does not exist.)\n")


# ---------------------------------------------------------------------------
# stats, global
# ---------------------------------------------------------------------------

def cmd_stats_display(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["stats", "display"])
    if "openmetrics" in a:
        sys.stdout.write(ctx.request("metrics.openmetrics", instance=ctx.instance()) or "")
        return
    rows = ctx.request("stats.display", instance=ctx.instance(),
                       **({"userspace": True} if "userspace" in a else {})) or []
    sys.stdout.write(printers.stats_table(rows, show_all="all" in a,
                                          explain="explain" in a, csv="csv" in a,
                                          headers="no-headers" not in a,
                                          explanations=EXPLANATIONS))


def cmd_global_display(ctx, name, args):
    from jool.config import globals as gl
    a = parse_op(ctx, name, args, SPECS["global", "display"])
    rows = ctx.request("global.display", instance=ctx.instance()) or []
    lines = gl.display_lines(rows, csv="csv" in a, headers="no-headers" not in a)
    sys.stdout.write("".join(line + "\n" for line in lines))


def cmd_global_update(ctx, name, args, key):
    store = {"value": None}
    a = parse_op(ctx, name, args, SPECS["global", "update"], on_arg=last_positional(store))
    if store["value"] is None:
        error(f"Missing value of key {key}.")
    value = values.parse_global(key, store["value"])
    ctx.request("global.update", instance=ctx.instance(), key=key, value=value,
                force="force" in a)


# ---------------------------------------------------------------------------
# pool4
# ---------------------------------------------------------------------------

def _pool4_positionals(entry):
    def on_arg(word):
        if "." in word:
            entry["prefix"] = values.parse_prefix4(word)
        else:
            entry["ports"] = values.parse_port_range(word)
        return True
    return on_arg


def _max_iterations(text):
    if text in ("auto", "infinity"):
        return text
    return values.parse_uint(text)


def cmd_pool4_display(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["pool4", "display"], protocols=True)
    proto = a.proto or "tcp"
    rows = ctx.request("pool4.display", instance=ctx.instance(), proto=proto) or []
    sys.stdout.write(printers.pool4_table(rows, csv="csv" in a,
                                          headers="no-headers" not in a))


def cmd_pool4_add(ctx, name, args):
    entry = {}
    a = parse_op(ctx, name, args, SPECS["pool4", "add"], on_arg=_pool4_positionals(entry),
                 value_parsers={"mark": values.parse_uint,
                                "max-iterations": _max_iterations},
                 protocols=True)
    if "prefix" not in entry or "ports" not in entry or a.proto is None:
        items = []
        if "prefix" not in entry:
            items.append("an IPv4 prefix or address")
        if "ports" not in entry:
            items.append("a port (or ICMP id) range")
        if a.proto is None:
            items.append("a protocol (--tcp, --udp or --icmp)")
        missing(items)
    addr, length = entry["prefix"]
    if length < 24 and "force" not in a:
        sys.stderr.write(f"Error: {addr}/{length} holds {1 << (32 - length)} addresses; "
                         "that many defeats the purpose of NAT64 (SIIT may suit better).\n"
                         "Error: Nothing was added. Use --force to add it anyway.\n")
        raise Exit(E2BIG_EXIT)
    low, high = entry["ports"]
    ctx.request("pool4.add", instance=ctx.instance(), proto=a.proto,
                prefix=f"{addr}/{length}", min=low, max=high,
                mark=a.values.get("mark", 0),
                max_iterations=a.values.get("max-iterations", "keep"),
                force="force" in a)


def cmd_pool4_remove(ctx, name, args):
    entry = {}
    a = parse_op(ctx, name, args, SPECS["pool4", "remove"],
                 on_arg=_pool4_positionals(entry),
                 value_parsers={"mark": values.parse_uint}, protocols=True)
    if "prefix" not in entry:
        missing(["an IPv4 prefix or address"])
    addr, length = entry["prefix"]
    low, high = entry.get("ports", (0, 65535))
    ctx.request("pool4.remove", instance=ctx.instance(), proto=a.proto or "tcp",
                prefix=f"{addr}/{length}", min=low, max=high,
                mark=a.values.get("mark", 0), quick="quick" in a)


def cmd_pool4_flush(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["pool4", "flush"])
    ctx.request("pool4.flush", instance=ctx.instance(), quick="quick" in a)


# ---------------------------------------------------------------------------
# bib, session
# ---------------------------------------------------------------------------

def _bib_positionals(entry):
    def on_arg(word):
        if ":" in word:
            entry["taddr6"] = values.parse_taddr6(word)
        elif "." in word:
            entry["taddr4"] = values.parse_taddr4(word)
        else:
            return False
        return True
    return on_arg


def cmd_bib_display(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["bib", "display"], protocols=True)
    proto = a.proto or "tcp"
    rows = ctx.request("bib.display", instance=ctx.instance(), proto=proto) or []
    resolve = printers.Resolver("numeric" in a, proto)
    sys.stdout.write(printers.bib_table(rows, proto, resolve, csv="csv" in a,
                                        headers="no-headers" not in a))


def cmd_bib_add(ctx, name, args):
    entry = {}
    a = parse_op(ctx, name, args, SPECS["bib", "add"], on_arg=_bib_positionals(entry),
                 protocols=True)
    items = []
    if "taddr6" not in entry:
        items.append("an IPv6 transport address")
    if "taddr4" not in entry:
        items.append("an IPv4 transport address")
    if items:
        missing(items)
    (addr6, port6), (addr4, port4) = entry["taddr6"], entry["taddr4"]
    ctx.request("bib.add", instance=ctx.instance(), proto=a.proto or "tcp",
                addr6=addr6, port6=port6, addr4=addr4, port4=port4)


def cmd_bib_remove(ctx, name, args):
    entry = {}
    a = parse_op(ctx, name, args, SPECS["bib", "remove"], on_arg=_bib_positionals(entry),
                 protocols=True)
    if not entry:
        missing(["at least one transport address"])
    req = {"instance": ctx.instance(), "proto": a.proto or "tcp"}
    if "taddr6" in entry:
        req["addr6"], req["port6"] = entry["taddr6"]
    if "taddr4" in entry:
        req["addr4"], req["port4"] = entry["taddr4"]
    ctx.request("bib.remove", **req)


def cmd_session_display(ctx, name, args):
    a = parse_op(ctx, name, args, SPECS["session", "display"], protocols=True)
    proto = a.proto or "tcp"
    rows = ctx.request("session.display", instance=ctx.instance(), proto=proto) or []
    resolve = printers.Resolver("numeric" in a, proto)
    sys.stdout.write(printers.session_table(rows, proto, resolve, csv="csv" in a,
                                            headers="no-headers" not in a))


# ---------------------------------------------------------------------------
# file, joold
# ---------------------------------------------------------------------------

def load_atomic(path, instance):
    from jool.config import atomic
    return _config_call(atomic.load_file, path, instance)


def cmd_file_handle(ctx, name, args):
    store = {"value": None}
    a = parse_op(ctx, name, args, SPECS["file", "handle"], on_arg=last_positional(store))
    if store["value"] is None:
        missing(["a file name"])
    config = load_atomic(store["value"], ctx.iname)
    instance = values.validate_instance_name(config["instance"])
    ctx.request("file.handle", start=True, instance=instance, config=config,
                force="force" in a)


def cmd_joold_advertise(ctx, name, args):
    ctx.request("joold.advertise", instance=ctx.instance())


# ---------------------------------------------------------------------------
# autocomplete (hidden; used by tools/jool-completion.bash)
# ---------------------------------------------------------------------------

def _option_words(spec):
    words = [f"--{o.long}" for o in spec.options]
    for opt in spec.options:
        if opt.long == "max-iterations":
            words += ["auto", "infinity"]
        if opt.long == "pool6":
            words.append("64:ff9b::/96")
    return " ".join(words + ["--help", "--usage", "--version"])


def _key_candidates(key):
    from jool.config import globals as gl
    spec = gl.BY_NAME.get(key)
    if spec is not None and spec.type is gl.BOOL:
        return "true false"
    if key == "pool6":
        return "64:ff9b::/96"
    return ""


def cmd_autocomplete(args):
    """`jool autocomplete N WORD...`: the candidates for word N of `jool WORD...`."""
    if len(args) < 1:
        return
    text = args[0].strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    depth = sign * int(digits or "0") - 1
    words = args[1:]
    if depth not in (len(words) - 1, len(words)):
        return
    nodes = keywords.tree()
    path = []
    for i in range(depth):
        found = keywords.find_matches(nodes, words[i])
        if len(found) != 1:
            return
        node = found[0]
        path.append(node)
        if node.children is None:
            if node.hidden:
                return
            if len(path) == 3:          # global update KEY
                sys.stdout.write(_key_candidates(node.label))
            else:
                sys.stdout.write(_option_words(SPECS[path[0].label, node.label]))
            return
        nodes = node.children
    word = words[depth] if depth < len(words) else ""
    for node in keywords.find_matches(nodes, word):
        sys.stdout.write(f"{node.label} ")


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

HANDLERS = {
    ("instance", "display"): cmd_instance_display,
    ("instance", "add"): cmd_instance_add,
    ("instance", "remove"): cmd_instance_remove,
    ("instance", "flush"): cmd_instance_flush,
    ("instance", "status"): cmd_instance_status,
    ("stats", "display"): cmd_stats_display,
    ("global", "display"): cmd_global_display,
    ("pool4", "display"): cmd_pool4_display,
    ("pool4", "add"): cmd_pool4_add,
    ("pool4", "remove"): cmd_pool4_remove,
    ("pool4", "flush"): cmd_pool4_flush,
    ("bib", "display"): cmd_bib_display,
    ("bib", "add"): cmd_bib_add,
    ("bib", "remove"): cmd_bib_remove,
    ("session", "display"): cmd_session_display,
    ("file", "handle"): cmd_file_handle,
    ("joold", "advertise"): cmd_joold_advertise,
}


def run(argv):
    if not argv:
        sys.stdout.write(help_text())
        return 0
    try:
        action, iname, index = parse_argp1(argv)
    except _Argp1Error:
        sys.stdout.write(help_text())
        return 0
    if action == "help":
        sys.stdout.write(help_text())
        return 0
    if action == "version":
        sys.stdout.write(VERSION + "\n")
        return 0
    if action == "usage":
        sys.stdout.write(usage_text())
        return 0
    words = argv[index:]
    path, at = keywords.walk(words)
    node = path[-1]
    mode = path[0].label
    if mode == "autocomplete":
        cmd_autocomplete(words[at + 1:])
        return 0
    ctx = Context(iname)
    name = words[at]                    # argp's program name: the word as typed
    args = words[at + 1:]
    if mode == "global" and path[1].label == "update":
        cmd_global_update(ctx, name, args, node.label)
    else:
        HANDLERS[mode, node.label](ctx, name, args)
    return 0


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    try:
        code = run(list(argv))
    except Exit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code


# ---------------------------------------------------------------------------
# argparse rendition (man page)
# ---------------------------------------------------------------------------

def _add_spec(parser, spec):
    for opt in spec.options:
        flags = ([f"-{opt.short}"] if opt.short else []) + [f"--{opt.long}"]
        if opt.arg:
            parser.add_argument(*flags, metavar=opt.arg, help=opt.doc)
        else:
            parser.add_argument(*flags, action="store_true", help=opt.doc)
    if spec.args_doc:
        single = spec.args_doc.count("<") == 1
        parser.add_argument("args", nargs="?" if single else "*",
                            metavar=spec.args_doc.strip("[]") if single else "ARGS",
                            help=spec.args_doc)


def build_parsers():
    """The command line as argparse parsers (used to generate man/jool.8).

    Runtime parsing follows GNU argp's conventions instead (jool.cli.argp), driven
    by the same option declarations (SPECS)."""
    parser = argparse.ArgumentParser(
        prog=PROG, add_help=False,
        description="Configure the userspace NAT64 translator (Jool 4.1.9 compatible). "
                    "MODE and OPERATION words may be abbreviated to any unambiguous "
                    "prefix. Exit status: 0 success, 1 EPERM or a non-numeric integer, "
                    "2 file not found, 3 no such instance or entry, 17 already exists, "
                    "22 refused by the translator, 64 option syntax error, 234 invalid "
                    "input, 239 duplicated JSON tag, 249 pool4 prefix shorter than /24 "
                    "without --force, 253 control process unreachable.",
        epilog="Environment: JOOL_CONTROL_SOCKET names the abstract Unix socket of the "
               "control process (default jool-userspace/control); JOOL_REGISTRY_DIR the "
               "directory of the instance registry (default /run/jool-userspace/"
               "instances); JOOL_CONTROL_COMMAND the command that starts a control "
               "process (default: python -m jool.control --daemon).")
    parser.add_argument("-i", "--instance", metavar="NAME",
                        help="Instance to act on (default: 'default')")
    parser.add_argument("-f", "--file", metavar="FILE",
                        help="Read the instance name from this atomic configuration file")
    parser.add_argument("-?", "--help", action="store_true", help="Print the help and exit")
    parser.add_argument("-V", "--version", action="store_true",
                        help=f"Print the version ({VERSION}) and exit")
    parser.add_argument("--usage", action="store_true", help="Print a short usage and exit")
    modes = parser.add_subparsers(dest="mode", title="modes", metavar="MODE")
    mode_help = {
        "instance": "Translator instances",
        "stats": "Counters",
        "global": "Global configuration",
        "pool4": "IPv4 transport addresses used to mask IPv6 clients",
        "bib": "Binding Information Base (transport address mappings)",
        "session": "Sessions",
        "file": "Atomic configuration",
        "joold": "Session synchronization",
    }
    for mode in keywords.tree():
        if mode.hidden:
            continue
        mode_parser = modes.add_parser(mode.label, help=mode_help[mode.label],
                                       add_help=False)
        ops = mode_parser.add_subparsers(dest="operation", title="operations",
                                         metavar="OPERATION")
        for op in mode.children:
            if mode.label == "joold":
                ops.add_parser(op.label, add_help=False,
                               help="Ask the instance to multicast its session table")
                continue
            spec = SPECS[mode.label, op.label]
            op_parser = ops.add_parser(op.label, help=spec.doc, add_help=False)
            if mode.label == "global" and op.label == "update":
                op_parser.add_argument("key", metavar="KEY",
                                       choices=[n.label for n in op.children],
                                       help="One of: " + ", ".join(
                                           n.label for n in op.children))
            _add_spec(op_parser, spec)
    return parser


if __name__ == "__main__":
    sys.exit(main())
