"""Per-operation option parsing with GNU argp's observable conventions (spec/cli.md §1.3).

Options are declared once (`Opt`), and used twice: here, by a small getopt_long
work-alike that reproduces argp's messages and exit codes, and by
`jool.cli.jool.build_parsers()`, which turns the same declarations into argparse
parsers for the man page.  Conventions kept from GNU:

* options anywhere after the operation word (permutation); they are processed in
  the order typed, positionals afterwards, in order;
* `--opt=value` and `--opt value`, `-xVALUE` and `-x VALUE`, clustered flags `-tf`;
* a unique prefix of a long option selects it (`--nu`); several → ambiguous;
* `--` ends the options; a lone `-` is a positional; anything else that starts with
  `-` is an option (so `-1` is an invalid option);
* argp's own options exist in every parser: `--help`/`-?`, `--usage`,
  `--version`/`-V`, and the hidden `--program-name` and `--HANG` (they take part in
  prefix matching, as in argp);
* every error prints `<name>: <what>` and the `Try ...` line, exit 64.
"""

import sys

from jool.cli.errors import ARGP_EXIT, Exit

VERSION = "4.1.9.0"


class Opt:
    """One option of an operation.

    long: name without dashes; short: one character or None; arg: metavar of a
    required argument, or None for a flag; key: the name the handler sees.
    """

    __slots__ = ("long", "short", "arg", "doc", "key", "hidden", "optional")

    def __init__(self, long, short=None, arg=None, doc="", key=None, hidden=False,
                 optional=False):
        self.long = long
        self.short = short
        self.arg = arg
        self.doc = doc
        self.key = key or long
        self.hidden = hidden
        self.optional = optional


DEFAULT_OPTS = (
    Opt("help", "?", doc="Give this help list", key="--help"),
    Opt("usage", doc="Give a short usage message", key="--usage"),
    Opt("program-name", arg="NAME", doc="Set the program name", key="--program-name",
        hidden=True),
    Opt("HANG", arg="SECS", doc="Hang for SECS seconds (default 3600)", key="--HANG",
        hidden=True, optional=True),
    Opt("version", "V", doc="Print program version", key="--version"),
)


class Spec:
    """The argp description of one operation."""

    def __init__(self, options=(), args_doc=None, doc=""):
        self.options = list(options)
        self.args_doc = args_doc        # None: the operation takes no positional
        self.doc = doc

    def all_options(self):
        return self.options + list(DEFAULT_OPTS)


def _try_line(name):
    return f"Try `{name} --help' or `{name} --usage' for more information.\n"


def argp_error(name, message):
    """argp_error(): `<name>: <message>`, the Try line, exit 64."""
    sys.stderr.write(f"{name}: {message}\n{_try_line(name)}")
    raise Exit(ARGP_EXIT)


def _getopt_error(name, message):
    sys.stderr.write(f"{name}: {message}\n{_try_line(name)}")
    raise Exit(ARGP_EXIT)


def _help_rows(opts):
    lines = []
    for opt in opts:
        if opt.hidden:
            continue
        left = (f"  -{opt.short}, " if opt.short else "      ") + f"--{opt.long}"
        if opt.arg:
            left += f"[={opt.arg}]" if opt.optional else f"={opt.arg}"
        if len(left) >= 29:
            lines += [left, " " * 29 + opt.doc]
        else:
            lines.append(left.ljust(29) + opt.doc)
    return lines


def help_text(name, spec):
    lines = [f"Usage: {name} [OPTION...]" + (f" {spec.args_doc}" if spec.args_doc else "")]
    if spec.doc:
        lines.append(spec.doc)
    lines.append("")
    if spec.options:
        lines += _help_rows(spec.options) + [""]
    lines += _help_rows(DEFAULT_OPTS) + [""]
    lines.append("Mandatory or optional arguments to long options are also mandatory or")
    lines.append("optional for any corresponding short options.")
    return "\n".join(lines) + "\n"


def usage_text(name, spec):
    shorts = "".join(o.short for o in spec.all_options()
                     if o.short and not o.arg and not o.hidden)
    parts = [f"Usage: {name}"]
    if shorts:
        parts.append(f"[-{shorts}]")
    for o in spec.all_options():
        if o.hidden:
            continue
        if o.short and o.arg:
            parts.append(f"[-{o.short} {o.arg}]")
    for o in spec.all_options():
        if o.hidden:
            continue
        if o.arg:
            parts.append(f"[--{o.long}={o.arg}]")
        else:
            parts.append(f"[--{o.long}]")
    if spec.args_doc:
        parts.append(spec.args_doc)
    # argp wraps at 79 columns, continuing lines indented past the name.
    out, line = [], ""
    indent = " " * (len(name) + 7)
    for part in parts:
        if line and len(line) + 1 + len(part) > 79:
            out.append(line)
            line = indent + part
        else:
            line = f"{line} {part}" if line else part
    out.append(line)
    return "\n".join(out) + "\n"


def parse(name, args, spec, on_option, on_arg=None):
    """Parse `args` (the words after the operation word `name`).

    on_option(key, value) is called for each option in typed order; it may raise
    Exit.  on_arg(word) is then called for each positional and returns False when
    it does not take the word (→ "Too many arguments").  With on_arg None the
    operation takes no positionals.
    """
    options = spec.all_options()
    longs = options
    shorts = {o.short: o for o in options if o.short}
    positionals = []

    def act(opt, value):
        nonlocal name
        if opt.key == "--help":
            sys.stdout.write(help_text(name, spec))
            raise Exit(0)
        if opt.key == "--usage":
            sys.stdout.write(usage_text(name, spec))
            raise Exit(0)
        if opt.key == "--version":
            sys.stdout.write(VERSION + "\n")
            raise Exit(0)
        if opt.key == "--program-name":
            name = value
            return
        if opt.key == "--HANG":
            return
        on_option(opt.key, value)

    i = 0
    n = len(args)
    while i < n:
        word = args[i]
        if word == "--":
            positionals.extend(args[i + 1:])
            break
        if word.startswith("--"):
            body = word[2:]
            label, eq, inline = body.partition("=")
            opt = next((o for o in longs if o.long == label), None)
            if opt is None:
                found = [o for o in longs if o.long.startswith(label)]
                if not found:
                    _getopt_error(name, f"unrecognized option '{word}'")
                if len(found) > 1:
                    choices = " ".join(f"'--{o.long}'" for o in found)
                    _getopt_error(name, f"option '--{label}' is ambiguous; "
                                        f"possibilities: {choices}")
                opt = found[0]
            if opt.arg is None:
                if eq:
                    _getopt_error(name, f"option '--{opt.long}' doesn't allow an argument")
                act(opt, None)
            elif eq:
                act(opt, inline)
            elif opt.optional:
                act(opt, None)
            elif i + 1 < n:
                i += 1
                act(opt, args[i])
            else:
                _getopt_error(name, f"option '--{opt.long}' requires an argument")
        elif word.startswith("-") and word != "-":
            j = 1
            while j < len(word):
                char = word[j]
                opt = shorts.get(char)
                if opt is None:
                    _getopt_error(name, f"invalid option -- '{char}'")
                if opt.arg is None:
                    act(opt, None)
                    j += 1
                    continue
                rest = word[j + 1:]
                if rest:
                    act(opt, rest)
                elif opt.optional:
                    act(opt, None)
                elif i + 1 < n:
                    i += 1
                    act(opt, args[i])
                else:
                    _getopt_error(name, f"option requires an argument -- '{char}'")
                break
        else:
            positionals.append(word)
        i += 1

    for word in positionals:
        if on_arg is None or on_arg(word) is False:
            argp_error(name, "Too many arguments")
    return name
