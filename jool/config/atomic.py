"""Atomic configuration files (`jool file handle FILE`, spec/config.md).

`load()` performs every check the 4.1.9 client performs before (or while)
talking to the translator, and returns the file in a normalized form that the
control process applies as one transaction (spec/config.md §3):

    {
      "instance": "edge",                 # validated name (<= 15 printable bytes)
      "framework": "netfilter",           # or "iptables"
      "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:10:00", ...},
      "pool4": [{"proto": "tcp", "prefix": "198.51.100.8/30", "min": 1024,
                 "max": 65535, "mark": 0, "max_iterations": "keep"}, ...],
      "bib": [{"proto": "tcp", "addr6": "2001:db8::10", "port6": 443,
               "addr4": "198.51.100.8", "port4": 1443}, ...],
      "order": ["global", "pool4", "bib"],
    }

Meaning of the normalized form:

* `global` holds only the keys the file names, by their canonical names, in
  their canonical JSON form (`jool.config.globals.to_json`; times are
  "H:MM:SS[.mmm]" strings, pool6 a string or None). Every key the file omits
  reverts to its default: the translator starts from a candidate with all
  defaults (pool6 included: it has none, so a file without `pool6` fails with
  "pool6 is mandatory"). The server reads each value back with
  `globals.parse_json` and checks it with `globals.validate` (exit 22 errors:
  bounds, pool6 shape, a pool6 different from the existing instance's...).
* `pool4` lists the entries in file order, each in the argument shape of the
  `pool4.add` control operation: protocol lowercase; prefix "A.B.C.D/len" with
  any host bits kept (the translator rejects them, exit 22); port range
  min/max as written (default 61001-65535; a reversed range is left for the
  pool4 code to swap); mark (default 0); max_iterations "keep" when the entry
  does not set it (the mark's set keeps its setting, auto for a new set),
  else "auto", "infinity" or a positive integer. No "/24 needs --force" rule
  applies to files. The candidate's pool4 replaces the instance's wholesale.
* `bib` lists static BIB entries in the argument shape of `bib.add`. They are
  always validated against the candidate pool4 when the transaction ends (an
  IPv4 transport address outside pool4 of its protocol -> exit 22), but they
  are only *installed* when the file creates the instance. When the instance
  already exists its BIB, sessions and joold queue are kept untouched and the
  file's `bib` array is ignored.
* `order` is the file order of the `global`, `pool4` and `bib` members (the
  order the translator applies them in; it only matters to which error is
  reported first).

Client-side errors raise `jool.config.globals.ConfigError` carrying the exit
status: 234 for syntax and schema errors, 239 for a repeated tag, 1 for a
number that does not start with a digit, 34 for a number beyond 64 bits, and
the errno when the file cannot be read.
"""

import os
import socket

from . import globals as g
from .globals import ConfigError, EINVAL_CLIENT

EEXIST_CLIENT = 239             # low byte of -EEXIST
FRAMEWORKS = ("netfilter", "iptables")
PROTOCOLS = ("tcp", "udp", "icmp")
DEFAULT_PORT_RANGE = "61001-65535"
INSTANCE_NAME_MAX = 15

NAT64_ROOT_TAGS = ("instance", "framework", "global", "pool4", "bib")
SIIT_ROOT_TAGS = ("eamt", "denylist4", "blacklist4")


# --------------------------------------------------------------------------
# A JSON reader with the leniencies of the parser 4.1.9 uses: the first value
# is read and whatever follows it is ignored; members keep their order and
# their repetitions; every number is a double.
# --------------------------------------------------------------------------

class JsonObject(list):
    """An object: the (name, value) members in file order, repeats included."""

    is_json_object = True


class _Stop(Exception):
    def __init__(self, position):
        super().__init__(position)
        self.position = position


class _Reader:
    def __init__(self, text):
        self.text = text

    def skip(self, i):
        text = self.text
        while i < len(text) and ord(text[i]) <= 32:
            i += 1
        return i

    def at(self, i):
        return self.text[i] if i < len(self.text) else ""

    def value(self, i):
        text = self.text
        if text.startswith("null", i):
            return None, i + 4
        if text.startswith("false", i):
            return False, i + 5
        if text.startswith("true", i):
            return True, i + 4
        c = self.at(i)
        if c == '"':
            return self.string(i)
        if c == "-" or "0" <= c <= "9":
            return self.number(i)
        if c == "[":
            return self.array(i)
        if c == "{":
            return self.object(i)
        raise _Stop(i)

    def number(self, i):
        sign = 1.0
        if self.at(i) == "-":
            sign = -1.0
            i += 1
        n = 0.0
        scale = 0
        if self.at(i) == "0":
            i += 1
        if "1" <= self.at(i) <= "9":
            while "0" <= self.at(i) <= "9":
                n = n * 10.0 + (ord(self.text[i]) - 48)
                i += 1
        if self.at(i) == "." and "0" <= self.at(i + 1) <= "9":
            i += 1
            while "0" <= self.at(i) <= "9":
                n = n * 10.0 + (ord(self.text[i]) - 48)
                scale -= 1
                i += 1
        exponent = 0
        exponent_sign = 1
        if self.at(i) in ("e", "E"):
            i += 1
            if self.at(i) == "+":
                i += 1
            elif self.at(i) == "-":
                exponent_sign = -1
                i += 1
            while "0" <= self.at(i) <= "9":
                exponent = exponent * 10 + (ord(self.text[i]) - 48)
                i += 1
        try:
            value = sign * n * (10.0 ** (scale + exponent * exponent_sign))
        except OverflowError:
            value = sign * float("inf") if n else sign * 0.0
        return value, i

    @staticmethod
    def _hex4(text, i):
        digits = text[i:i + 4]
        if len(digits) < 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            return 0
        return int(digits, 16)

    def string(self, i):
        text = self.text
        if self.at(i) != '"':
            raise _Stop(i)
        i += 1
        out = []
        escapes = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
        while i < len(text) and text[i] != '"':
            c = text[i]
            if c != "\\":
                out.append(c)
                i += 1
                continue
            i += 1
            c = self.at(i)
            if c == "u":
                code = self._hex4(text, i + 1)
                i += 4
                if code and not 0xDC00 <= code <= 0xDFFF:
                    if 0xD800 <= code <= 0xDBFF:
                        if self.at(i + 1) == "\\" and self.at(i + 2) == "u":
                            low = self._hex4(text, i + 3)
                            i += 6
                            if 0xDC00 <= low <= 0xDFFF:
                                out.append(chr(0x10000 + (((code & 0x3FF) << 10)
                                                          | (low & 0x3FF))))
                    else:
                        out.append(chr(code))
            elif c:
                out.append(escapes.get(c, c))
            i += 1
        if i < len(text):       # the closing quote (an unterminated string just ends)
            i += 1
        return "".join(out), min(i, len(text))

    def array(self, i):
        items = []
        i = self.skip(i + 1)
        if self.at(i) == "]":
            return items, i + 1
        item, i = self.value(self.skip(i))
        items.append(item)
        i = self.skip(i)
        while self.at(i) == ",":
            item, i = self.value(self.skip(i + 1))
            items.append(item)
            i = self.skip(i)
        if self.at(i) == "]":
            return items, i + 1
        raise _Stop(i)

    def object(self, i):
        members = JsonObject()
        i = self.skip(i + 1)
        if self.at(i) == "}":
            return members, i + 1
        while True:
            name, i = self.string(self.skip(i))
            i = self.skip(i)
            if self.at(i) != ":":
                raise _Stop(i)
            value, i = self.value(self.skip(i + 1))
            members.append((name, value))
            i = self.skip(i)
            if self.at(i) != ",":
                break
            i += 1
        if self.at(i) == "}":
            return members, i + 1
        raise _Stop(i)


def parse_json_text(text):
    """The first JSON value of `text` (trailing garbage ignored); objects become
    JsonObject lists. A syntax error raises ConfigError(234) quoting the text
    from where the parser stopped."""
    text = text.split("\0", 1)[0]       # the client reads a C string
    reader = _Reader(text)
    try:
        value, _ = reader.value(reader.skip(0))
    except _Stop as stop:
        raise ConfigError("The file is not valid JSON; parsing stopped at the beginning "
                          f"of this text:\n{text[stop.position:]}", EINVAL_CLIENT) from None
    except RecursionError:
        raise ConfigError("The JSON document is nested too deeply.", EINVAL_CLIENT) from None
    return value


# --------------------------------------------------------------------------
# Schema helpers
# --------------------------------------------------------------------------

def _type_error(name, value, expected):
    return g.json_type_error(name if name is not None else "<unnamed>", value, expected)


def _missing(parent, child):
    return ConfigError(f"Object '{parent or '<unnamed>'}' is missing the '{child}' child.",
                       EINVAL_CLIENT)


def _members(obj, name, tags):
    """Walks an object's members: comments skipped, names matched to `tags`
    case-insensitively, repeats -> 239, unknown names -> 234.
    Yields (tag, written name, value)."""
    if not isinstance(obj, JsonObject):
        raise _type_error(name, obj, "object")
    seen = set()
    for written, value in obj:
        lowered = g.ascii_lower(written)
        if lowered == "comment":
            continue
        if lowered not in tags:
            raise ConfigError(f"Unknown tag: '{written}'", EINVAL_CLIENT)
        if lowered in seen:
            raise ConfigError(f"Multiple '{lowered}' tags found. Aborting...", EEXIST_CLIENT)
        seen.add(lowered)
        yield lowered, written, value


def _string(name, value):
    if not isinstance(value, str):
        raise _type_error(name, value, "string")
    return value


def validate_instance_name(name):
    """<= 15 bytes, each within 0x20..0x7F (spec/cli.md §1.1)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > INSTANCE_NAME_MAX or any(b < 0x20 or b > 0x7F for b in raw):
        raise ConfigError(f"Invalid instance name '{name}': only printable ASCII characters "
                          f"are allowed, {INSTANCE_NAME_MAX} characters max.", EINVAL_CLIENT)
    return name


def _protocol(name, value):
    text = _string(name, value)
    if g.ascii_lower(text) not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol '{text}' (expected TCP, UDP or ICMP).",
                          EINVAL_CLIENT)
    return g.ascii_lower(text)


def _max_iterations(name, value):
    if isinstance(value, str):
        if value in ("auto", "infinity"):
            return value
        raise ConfigError(f"'{value}' is not a valid {name} (expected a positive integer, "
                          "\"auto\" or \"infinity\").", EINVAL_CLIENT)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return g.json_uint(name, value, g.U32_MAX, minimum=1)
    raise _type_error(name, value, "string or number")


POOL4_TAGS = ("mark", "protocol", "prefix", "port range", "max-iterations")
BIB_TAGS = ("ipv6 address", "ipv4 address", "protocol")


def _pool4_entry(entry):
    found = {}
    for tag, written, value in _members(entry, None, POOL4_TAGS):
        if tag == "mark":
            found["mark"] = g.json_uint(written, value)
        elif tag == "protocol":
            found["proto"] = _protocol(written, value)
        elif tag == "prefix":
            found["prefix"] = g.parse_prefix4(_string(written, value))
        elif tag == "port range":
            found["ports"] = g.parse_port_range(_string(written, value))
        else:
            found["max_iterations"] = _max_iterations(written, value)
    for required, key in (("protocol", "proto"), ("prefix", "prefix")):
        if key not in found:
            raise _missing(None, required)
    low, high = found.get("ports") or g.parse_port_range(DEFAULT_PORT_RANGE)
    return {"proto": found["proto"], "prefix": found["prefix"], "min": low, "max": high,
            "mark": found.get("mark", 0), "max_iterations": found.get("max_iterations", "keep")}


def _bib_entry(entry):
    found = {}
    for tag, written, value in _members(entry, None, BIB_TAGS):
        if tag == "ipv6 address":
            found["6"] = g.parse_taddr(_string(written, value), socket.AF_INET6)
        elif tag == "ipv4 address":
            found["4"] = g.parse_taddr(_string(written, value), socket.AF_INET)
        else:
            found["proto"] = _protocol(written, value)
    for required, key in (("ipv6 address", "6"), ("ipv4 address", "4"), ("protocol", "proto")):
        if key not in found:
            raise _missing(None, required)
    (addr6, port6), (addr4, port4) = found["6"], found["4"]
    return {"proto": found["proto"], "addr6": addr6, "port6": port6,
            "addr4": addr4, "port4": port4}


def _global_object(obj, name):
    out = {}
    for tag, written, value in _members(obj, name, g.NAMES):
        out[tag] = g.to_json(tag, g.parse_json(tag, value))
    return out


def _array(name, value, handler):
    if not isinstance(value, list) or isinstance(value, JsonObject):
        raise _type_error(name, value, "array")
    return [handler(item) for item in value]


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def loads(text, instance=None):
    """Checks and normalizes the text of an atomic configuration file.

    `instance` is the `-i` argument, if any: it must equal the file's name."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    root = parse_json_text(text)

    # First pass (as the client's): instance and framework; every known root tag
    # is accepted here, SIIT ones included; unknown and repeated tags fail.
    result = {"instance": None, "framework": None, "global": {}, "pool4": [], "bib": [],
              "order": []}
    for tag, written, value in _members(root, None, NAT64_ROOT_TAGS + SIIT_ROOT_TAGS):
        if tag == "instance":
            name = validate_instance_name(_string(written, value))
            if instance is not None and instance != name:
                raise ConfigError(f"The -i argument ({instance}) and the file's instance "
                                  f"name ({name}) differ; please remove one of them.",
                                  EINVAL_CLIENT)
            result["instance"] = name
        elif tag == "framework":
            framework = _string(written, value)
            if framework not in FRAMEWORKS:
                raise ConfigError(f"Unknown framework: '{framework}' (expected 'netfilter' "
                                  "or 'iptables').", EINVAL_CLIENT)
            result["framework"] = framework
    if result["instance"] is None:      # 4.1.9 wants it in the file even with -i
        raise _missing(None, "instance")
    if result["framework"] is None:
        raise _missing(None, "framework")

    # Second pass: the NAT64 tables, in file order; SIIT tags are unknown here.
    for tag, written, value in _members(root, None, NAT64_ROOT_TAGS):
        if tag == "global":
            result["global"] = _global_object(value, written)
        elif tag == "pool4":
            result["pool4"] = _array(written, value, _pool4_entry)
        elif tag == "bib":
            result["bib"] = _array(written, value, _bib_entry)
        else:
            continue
        result["order"].append(tag)
    return result


def read_file(path):
    """The file's text; an unreadable file exits with its errno."""
    try:
        with open(path, "rb") as stream:
            return stream.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        code = exc.errno or 1
        raise ConfigError(f'Could not open file "{os.fsdecode(path)}": '
                          f"{os.strerror(code)}", code) from None


def load_file(path, instance=None):
    return loads(read_file(path), instance)


def load(path_or_text, instance=None):
    """load_file() or loads(): bytes and strings whose first non-blank character
    opens a JSON value ('{', '[', '"') or that span several lines are text;
    other strings and path objects are file names."""
    if isinstance(path_or_text, (bytes, bytearray)):
        return loads(path_or_text, instance)
    if isinstance(path_or_text, str) and (path_or_text.lstrip()[:1] in ("{", "[", '"')
                                          or "\n" in path_or_text):
        return loads(path_or_text, instance)
    return load_file(path_or_text, instance)


def instance_from_file(path):
    """`jool -f FILE ...`: only the root `instance` string matters (key matched
    case-insensitively, everything else ignored; spec/config.md §4)."""
    root = parse_json_text(read_file(path))
    if not isinstance(root, JsonObject):
        raise _type_error("root", root, "object")
    for written, value in root:
        if g.ascii_lower(written) == "instance":
            return _string(written, value)
    raise ConfigError("The file does not name an instance.", EINVAL_CLIENT)
