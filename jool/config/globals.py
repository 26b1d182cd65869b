"""The NAT64 global configuration keys (spec/globals.md) and their value formats.

One declarative table, `KEYS`, lists the 26 NAT64-visible keys in `global display`
order: name, value type, default, translator-side bounds and the keyword argument
of `jool._fast.pipeline.Translator` the key feeds (None: no translator counterpart).

Values travel in three forms:

* **text** typed by the user (`jool global update KEY TEXT`): `parse_cli()`;
* **JSON form** (atomic configuration files, the control protocol): booleans,
  integers, plateaus as a list of integers, pool6 as a string or null, and times
  as `"H:MM:SS[.mmm]"` strings. `parse_json()` reads it, `to_json()` writes the
  canonical form (which `parse_json()` reads back unchanged);
* **internal form** (what the functions below return and accept): bool, int,
  list of int, pool6 as `"addr/len"` or None, times as int milliseconds.

Client-side errors carry the client's exit status (234 = -EINVAL, 1 = "not an
unsigned integer", 34 = ERANGE); translator-side errors from `validate()` carry 22.
Messages never include the `Error: ` prefix; the CLI adds it.
"""

import ipaddress
import socket
from dataclasses import dataclass

U8_MAX = 0xFF
U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF

EINVAL_CLIENT = 234     # low byte of -EINVAL: client-side validation
EINVAL = 22             # the translator refused the value
ERANGE = 34
NOT_A_NUMBER = 1        # a "number" that does not start with a digit

PLATEAUS_MAX = 64
POOL6_LENGTHS = (32, 40, 48, 56, 64, 96)
DEFAULT_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)
TIME_FORMAT = "[HH:[MM:]]SS[.mmm]"


class ConfigError(ValueError):
    """A refused configuration value. `code` is the process exit status
    (spec/cli.md §4); `message` the text shown after `Error: `."""

    def __init__(self, message, code=EINVAL_CLIENT):
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------
# Scalar parsers (C library semantics the 4.1.9 client relies on)
# --------------------------------------------------------------------------

_C_SPACE = " \t\n\v\f\r"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text):
    """strcasecmp()'s notion of case: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


def _strtoull(text, pos):
    """strtoull(text + pos, &end, 10): returns (value, end, overflowed).

    Leading white space and one sign are accepted; a minus negates modulo 2^64;
    no digits means no conversion (end == pos); overflow saturates (ERANGE)."""
    i = pos
    while i < len(text) and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    start = i
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    if i == start:
        return 0, pos, False
    value = int(text[start:i])
    if value > U64_MAX:
        return U64_MAX, i, True
    if negative:
        value = (-value) & U64_MAX
    return value, i, False


def _overflow(text):
    return ConfigError(f"'{text}' does not fit in 64 bits (error code {ERANGE}).", ERANGE)


def parse_uint(text, maximum=U32_MAX, minimum=0):
    """An unsigned decimal integer the way the client reads one: it must start
    with a digit (else exit 1), whatever follows the digits is ignored, and the
    bounds are checked afterwards (exit 234)."""
    if not text or not "0" <= text[0] <= "9":
        raise ConfigError(f"'{text}' is not an unsigned integer. (error code 1)", NOT_A_NUMBER)
    value, end, overflowed = _strtoull(text, 0)
    if overflowed:
        raise _overflow(text)
    if value < minimum or value > maximum:
        raise ConfigError(f"'{text}' is out of bounds ({minimum}-{maximum}).", EINVAL_CLIENT)
    return value


def _leading_uint(text, maximum):
    """parse_uint() that also returns the index where the digits stopped."""
    value = parse_uint(text, maximum)
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return value, end


def parse_bool(text):
    lowered = ascii_lower(text)
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"Cannot parse '{text}' as a bool (true|false|1|0|yes|no|on|off).",
                      EINVAL_CLIENT)


def parse_time(text):
    """`[[H:]M:]S[.mmm]` into milliseconds (spec/globals.md §2).

    Up to three colon-separated fields, none range-checked; an optional fraction
    needs at least three characters after the dot and is read as a whole number of
    milliseconds that is *added*; the arithmetic wraps (64 bits, then the result
    is truncated to 32)."""
    seconds, pos, overflowed = _strtoull(text, 0)
    if overflowed:
        raise _overflow(text)
    for _ in range(2):
        if pos >= len(text) or text[pos] != ":":
            break
        field, pos, overflowed = _strtoull(text, pos + 1)
        if overflowed:
            raise _overflow(text)
        seconds = (60 * seconds + field) & U64_MAX
    millis = (1000 * seconds) & U64_MAX
    if pos < len(text) and text[pos] == ".":
        if len(text) - (pos + 1) < 3:
            raise ConfigError(f"The fraction of '{text}' needs at least 3 digits "
                              "(it is a number of milliseconds).", EINVAL_CLIENT)
        fraction, pos, overflowed = _strtoull(text, pos + 1)
        if overflowed:
            raise _overflow(text)
        millis = (millis + fraction) & U64_MAX
    if pos != len(text):
        raise ConfigError(f"'{text}' does not seem to follow the '{TIME_FORMAT}' format.",
                          EINVAL_CLIENT)
    return millis & U32_MAX


def format_time(millis):
    """H:MM:SS, plus .mmm when the milliseconds are not zero."""
    millis = int(millis)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, rest = divmod(rest, 1000)
    text = f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{text}.{rest:03d}" if rest else text


def parse_plateaus(text):
    """Comma-separated u16 list. Empty items vanish (strtok); at most 64 items,
    counted before any is parsed; each item is an unsigned integer (so an item
    with a leading space is "not an unsigned integer", exit 1)."""
    items = [item for item in text.split(",") if item]
    if not items:
        raise ConfigError("The mtu-plateaus list cannot be empty.", EINVAL_CLIENT)
    if len(items) > PLATEAUS_MAX:
        raise ConfigError(f"mtu-plateaus accepts at most {PLATEAUS_MAX} values.", EINVAL_CLIENT)
    return [parse_uint(item, U16_MAX) for item in items]


def _tokens(text, separator):
    """strtok(): the non-empty pieces between separators."""
    return [piece for piece in text.split(separator) if piece]


def parse_prefix6(text):
    """`ADDR[/LEN]` as the client reads it: the length defaults to 128, only the
    digits after the first `/` count (`/96abc` = /96), anything after a second
    `/` is ignored. Host bits are NOT checked here (the translator does)."""
    if len(text) > 49:          # INET6_ADDRSTRLEN + "/" + 3 digits, minus the NUL
        raise ConfigError(f"'{text}' is too long to be an IPv6 prefix.", EINVAL_CLIENT)
    pieces = _tokens(text, "/")
    if not pieces:
        raise ConfigError(f"Cannot read '{text}' as an IPv6 prefix "
                          "(<IPv6 address>[/<length>], e.g. 64:ff9b::/96).", EINVAL_CLIENT)
    packed = _inet_pton(socket.AF_INET6, pieces[0])
    length = parse_uint(pieces[1], 128) if len(pieces) > 1 else 128
    return f"{socket.inet_ntop(socket.AF_INET6, packed)}/{length}"


def parse_prefix4(text):
    """`A.B.C.D[/LEN]` (default /32), same tokenizing rules as parse_prefix6()."""
    if len(text) > 18:          # INET_ADDRSTRLEN + "/" + 2 digits, minus the NUL
        raise ConfigError(f"'{text}' is too long to be an IPv4 prefix.", EINVAL_CLIENT)
    pieces = _tokens(text, "/")
    if not pieces:
        raise ConfigError(f"Cannot read '{text}' as an IPv4 prefix "
                          "(<IPv4 address>[/<length>], e.g. 192.0.2.0/24).", EINVAL_CLIENT)
    packed = _inet_pton(socket.AF_INET, pieces[0])
    length = parse_uint(pieces[1], 32) if len(pieces) > 1 else 32
    return f"{socket.inet_ntop(socket.AF_INET, packed)}/{length}"


def _inet_pton(family, text):
    try:
        return socket.inet_pton(family, text)
    except (OSError, ValueError):
        version = "IPv6" if family == socket.AF_INET6 else "IPv4"
        raise ConfigError(f"'{text}' is not a valid {version} address.", EINVAL_CLIENT) from None


def parse_taddr(text, family):
    """`ADDR#PORT` (bib entries): the port is the second `#`-separated piece."""
    version = "IPv6" if family == socket.AF_INET6 else "IPv4"
    limit = 51 if family == socket.AF_INET6 else 21
    example = "2001:db8::1#96" if family == socket.AF_INET6 else "203.0.113.8#80"
    if len(text) > limit:
        raise ConfigError(f"'{text}' is too long to be an {version} transport address.",
                          EINVAL_CLIENT)
    pieces = _tokens(text, "#")
    if not pieces:
        raise ConfigError(f"Cannot read '{text}' as an {version} transport address "
                          f"(<address>#<port>, e.g. {example}).", EINVAL_CLIENT)
    packed = _inet_pton(family, pieces[0])
    if len(pieces) < 2:
        raise ConfigError(f"'{text}' lacks a port (format: <{version} address>#<port>, "
                          f"e.g. {example}).", EINVAL_CLIENT)
    return socket.inet_ntop(family, packed), parse_uint(pieces[1], U16_MAX)


def parse_port_range(text):
    """`N` or `N-M` (0-65535 each). Junk after a number is ignored, but a dash
    must be followed by a valid number."""
    low, end = _leading_uint(text, U16_MAX)
    if end >= len(text) or text[end] != "-":
        return low, low
    high = parse_uint(text[end + 1:], U16_MAX)
    return low, high


# --------------------------------------------------------------------------
# JSON values (cJSON semantics: every number is a double; it is an "unsigned
# integer" when it lies within 0..2^32-1, and then it is truncated)
# --------------------------------------------------------------------------

def _is_object(value):
    """A JSON object: a dict, or the member list of jool.config.atomic.JsonObject."""
    return isinstance(value, dict) or getattr(value, "is_json_object", False)


def _is_array(value):
    return isinstance(value, (list, tuple)) and not _is_object(value)


def describe_json(value):
    if _is_object(value):
        return "an object"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "an object"


def json_type_error(name, value, expected):
    return ConfigError(f"The '{name}' element ({describe_json(value)}) is not a valid "
                       f"{expected}.", EINVAL_CLIENT)


def json_uint(name, value, maximum=U32_MAX, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value <= U32_MAX:
        raise json_type_error(name, value, "unsigned integer")
    number = int(value)
    if number < minimum or number > maximum:
        raise ConfigError(f"{name} {number} is out of range ({minimum}-{maximum}).",
                          EINVAL_CLIENT)
    return number


# --------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------

def _csv_bool(value):
    return "TRUE" if value else "FALSE"


def _text_fargs(value):
    v = int(value)
    bits = "".join(str((v >> i) & 1) for i in (3, 2, 1, 0))
    return (f"{v} (0b{bits}): SrcAddr:{(v >> 3) & 1} SrcPort:{(v >> 2) & 1} "
            f"DstAddr:{(v >> 1) & 1} DstPort:{v & 1}")


def _as_millis(value):
    return parse_time(value) if isinstance(value, str) else int(value)


def _json_bool(name, value):
    if value is True or value is False:
        return value
    raise json_type_error(name, value, "boolean")


def _json_time(name, value):
    if isinstance(value, str):
        return parse_time(value)
    if value is None:
        return parse_time("null")       # 4.1.9: null is handed to the text parser
    raise json_type_error(name, value, "string")


def _json_pool6(name, value):
    if value is None or value == "null":
        return None
    if isinstance(value, str):
        return parse_prefix6(value)
    raise json_type_error(name, value, "string")


def _json_plateaus(name, value):
    if not _is_array(value):
        raise json_type_error(name, value, "plateaus array")
    return [json_uint(name, item, U16_MAX) for item in value]


def _cli_pool6(text):
    return None if text == "null" else parse_prefix6(text)


@dataclass(frozen=True)
class ValueType:
    name: str
    cli: object         # text -> internal value
    json: object        # (key name, JSON value) -> internal value
    to_json: object     # internal value -> canonical JSON value
    text: object        # internal value -> `global display` text
    csv: object         # internal value -> `global display --csv` text


BOOL = ValueType("boolean", parse_bool, _json_bool, bool,
                 lambda v: "true" if v else "false", _csv_bool)
U8 = ValueType("8-bit unsigned integer", lambda t: parse_uint(t, U8_MAX),
               lambda n, v: json_uint(n, v, U8_MAX), int, str, str)
FARGS = ValueType("8-bit unsigned integer", lambda t: parse_uint(t, U8_MAX),
                  lambda n, v: json_uint(n, v, U8_MAX), int, _text_fargs, str)
U32 = ValueType("32-bit unsigned integer", lambda t: parse_uint(t, U32_MAX),
                json_uint, int, str, str)
TIME = ValueType(TIME_FORMAT, parse_time, _json_time,
                 lambda v: format_time(_as_millis(v)),
                 lambda v: format_time(_as_millis(v)) + " (HH:MM:SS)",
                 lambda v: format_time(_as_millis(v)))
PLATEAUS = ValueType("list of 16-bit unsigned integers separated by commas",
                     parse_plateaus, _json_plateaus, lambda v: [int(x) for x in v],
                     lambda v: ",".join(str(int(x)) for x in v),
                     lambda v: '"' + ",".join(str(int(x)) for x in v) + '"')
POOL6 = ValueType("IPv6 prefix", _cli_pool6, _json_pool6, lambda v: v,
                  lambda v: "(unset)" if v is None else v,
                  lambda v: "" if v is None else v)


@dataclass(frozen=True)
class Key:
    name: str
    type: ValueType
    default: object
    kwarg: object = None        # Translator keyword argument, or None
    minimum: object = None      # translator-side lower bound (exit 22)
    maximum: object = None      # translator-side upper bound (exit 22)


POOL6_DEFAULT = object()        # placeholder: pool6 defaults to the instance's own

# spec/globals.md §1, in `global display` order.
KEYS = (
    Key("manually-enabled", BOOL, True, "manually_enabled"),
    Key("pool6", POOL6, POOL6_DEFAULT, "pool6"),
    Key("lowest-ipv6-mtu", U32, 1280, "lowest_ipv6_mtu", minimum=1280),
    Key("logging-debug", BOOL, False),
    Key("zeroize-traffic-class", BOOL, False, "zeroize_traffic_class"),
    Key("override-tos", BOOL, False, "override_tos"),
    Key("tos", U8, 0, "tos"),
    Key("mtu-plateaus", PLATEAUS, list(DEFAULT_PLATEAUS), "mtu_plateaus"),
    Key("address-dependent-filtering", BOOL, False, "address_dependent_filtering"),
    Key("drop-externally-initiated-tcp", BOOL, False, "drop_externally_initiated_tcp"),
    Key("drop-icmpv6-info", BOOL, False, "drop_icmpv6_info"),
    Key("source-icmpv6-errors-better", BOOL, True, "source_icmpv6_errors_better"),
    Key("f-args", FARGS, 0b1011, "f_args", maximum=15),
    Key("handle-rst-during-fin-rcv", BOOL, False, "handle_rst_during_fin_rcv"),
    Key("tcp-est-timeout", TIME, 7_200_000, "tcp_est_timeout", minimum=7_200_000),
    Key("tcp-trans-timeout", TIME, 240_000, "tcp_trans_timeout", minimum=240_000),
    Key("udp-timeout", TIME, 300_000, "udp_timeout", minimum=120_000),
    Key("icmp-timeout", TIME, 60_000, "icmp_timeout"),
    Key("logging-bib", BOOL, False),
    Key("logging-session", BOOL, False),
    Key("maximum-simultaneous-opens", U32, 10, "maximum_simultaneous_opens"),
    Key("ss-enabled", BOOL, False),
    Key("ss-flush-asap", BOOL, True),
    Key("ss-flush-deadline", U32, 2000),
    Key("ss-capacity", U32, 512),
    Key("ss-max-payload", U32, 1452),
)

BY_NAME = {key.name: key for key in KEYS}
NAMES = tuple(key.name for key in KEYS)

# Exist only in SIIT; a NAT64 `global update` does not know them (spec §1).
SIIT_ONLY = ("amend-udp-checksum-zero", "eam-hairpin-mode", "randomize-rfc6791-addresses",
             "rfc6791v6-prefix", "rfc6791v4-prefix")


def lookup(name):
    """The Key called exactly `name`."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(f"Unknown global configuration key: '{name}'", EINVAL_CLIENT) from None


def lookup_json(member):
    """The Key an atomic-config member names (case-insensitive), or None."""
    return BY_NAME.get(ascii_lower(member))


def resolve_key(word):
    """`jool global update KEY`: keyword matching of spec/cli.md §1.2.

    A word equal to a label is that label; otherwise it must be the prefix of
    exactly one label. Matching is case-sensitive."""
    if word in BY_NAME:
        return word
    candidates = [name for name in NAMES if name.startswith(word)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConfigError(f"Unexpected token: '{word}'\n"
                          f"Available options: {''.join(n + ' ' for n in NAMES)}",
                          EINVAL_CLIENT)
    raise ConfigError(f"Ambiguous token: '{word}'\n"
                      f"Available options: {''.join(n + ' ' for n in candidates)}",
                      EINVAL_CLIENT)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

def parse_cli(key, text):
    """The value of `jool global update KEY TEXT`, parsed as the client does.
    `key` is a full key name (see resolve_key())."""
    return lookup(key).type.cli(text)


def parse_json(key, value):
    """A global's value from an atomic-config file or the control protocol
    (JSON types of spec/globals.md §1). Type errors exit 234."""
    return lookup(key).type.json(key, value)


def to_json(key, value):
    """The canonical JSON form of an internal value (parse_json() inverts it)."""
    return lookup(key).type.to_json(value)


def _pool6_network(prefix):
    try:
        return ipaddress.IPv6Network(prefix, strict=False)
    except ValueError:
        raise ConfigError(f"'{prefix}' is not a valid IPv6 prefix.", EINVAL) from None


def _validate_pool6(value, current, force):
    if value is None:
        raise ConfigError("pool6 is mandatory", EINVAL)
    if not isinstance(value, str):
        raise ConfigError("pool6 must be an IPv6 prefix", EINVAL)
    address, _, length = value.partition("/")
    network = _pool6_network(value)
    if network.prefixlen not in POOL6_LENGTHS:
        raise ConfigError(f"pool6's prefix length ({network.prefixlen}) must be 32, 40, 48, "
                          "56, 64 or 96.", EINVAL)
    packed = ipaddress.IPv6Address(address).packed
    if int.from_bytes(packed, "big") != int(network.network_address):
        raise ConfigError(f"'{value}' has nonzero bits after its prefix length "
                          "(RFC 6052 wants them zero).", EINVAL)
    if packed[8] != 0 and not force:
        raise ConfigError(f"'{value}': bits 64 to 71 (the RFC 6052 u-octet) must be zero "
                          "(use --force to accept it anyway).", EINVAL)
    canonical = f"{socket.inet_ntop(socket.AF_INET6, packed)}/{network.prefixlen}"
    if current is not None and _pool6_network(current) != network:
        raise ConfigError("can't change a NAT64 instance's pool6", EINVAL)
    return canonical


def _validate_plateaus(value):
    if not isinstance(value, (list, tuple)) or len(value) > PLATEAUS_MAX:
        raise ConfigError(f"mtu-plateaus needs 1 to {PLATEAUS_MAX} values.", EINVAL)
    numbers = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= U16_MAX:
            raise ConfigError(f"mtu-plateaus: {item!r} is not a 16-bit unsigned integer.",
                              EINVAL)
        if item:
            numbers.add(item)
    if not numbers:
        raise ConfigError("mtu-plateaus has no usable values (zeros are discarded).", EINVAL)
    return sorted(numbers, reverse=True)


def validate(key, value, current=None, force=False):
    """Translator-side checks of an internal value (errors exit 22).

    `current` is the key's current value in the instance, or the instance's
    whole {key: value} dict (None while the instance is being created); it
    matters only to pool6, which a NAT64 instance cannot change. `force` relaxes
    the pool6 u-octet check. Times may also come in their JSON form (strings).
    Returns the internal value to store (plateaus sorted, deduplicated, zeros
    dropped; pool6 canonical; times in milliseconds)."""
    spec = lookup(key)
    if isinstance(current, dict):
        current = current.get(key)
    if spec.type is TIME and isinstance(value, str):
        value = parse_time(value)
    if spec.type is POOL6:
        return _validate_pool6(value, current, force)
    if spec.type is PLATEAUS:
        return _validate_plateaus(value)
    if spec.type is BOOL:
        if value is not True and value is not False:
            raise ConfigError(f"{key} must be a boolean.", EINVAL)
        return value
    limit = U8_MAX if spec.type in (U8, FARGS) else U32_MAX
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ConfigError(f"{key} ({value!r}) must be an integer within 0-{limit}.", EINVAL)
    if spec.minimum is not None and value < spec.minimum:
        if spec.type is TIME:
            raise ConfigError(f"{key} ({format_time(value)}) is too small "
                              f"(minimum: {format_time(spec.minimum)}).", EINVAL)
        raise ConfigError(f"{key} ({value}) is too small (minimum: {spec.minimum}).", EINVAL)
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{key} ({value}) is out of range (0-{spec.maximum}).", EINVAL)
    return value


def defaults(pool6):
    """Every key's default value, in display order (pool6 is the instance's)."""
    out = {}
    for key in KEYS:
        if key.default is POOL6_DEFAULT:
            out[key.name] = pool6
        elif isinstance(key.default, list):
            out[key.name] = list(key.default)
        else:
            out[key.name] = key.default
    return out


def display_text(key, value):
    """The value as `jool global display` prints it (times may also be given in
    their JSON string form)."""
    return lookup(key).type.text(value)


def display_csv(key, value):
    """The value as `jool global display --csv` prints it."""
    return lookup(key).type.csv(value)


def display_lines(values, csv=False, headers=True):
    """The lines (without newlines) of `jool global display [--csv] [--no-headers]`.

    `values` maps key names to values (a dict, or the [[key, value], ...] pairs
    of the control protocol); keys are printed in display order. `headers` only
    matters to CSV."""
    if not isinstance(values, dict):
        values = dict(values)
    lines = []
    if csv and headers:
        lines.append("Field,Value")
    for name in NAMES:
        if name not in values:
            continue
        if csv:
            lines.append(f"{name},{display_csv(name, values[name])}")
        else:
            lines.append(f"  {name}: {display_text(name, values[name])}")
    return lines


def translator_kwargs(values):
    """Keyword arguments of jool._fast.pipeline.Translator (and of its configure/
    configure_nat64 methods) for the given values; times in milliseconds. Keys
    without a translator counterpart (logging-*, ss-*) are left out."""
    out = {}
    for key in KEYS:
        if key.kwarg is None or key.name not in values:
            continue
        value = values[key.name]
        if key.type is TIME:
            value = _as_millis(value)
        elif key.type is PLATEAUS:
            value = tuple(int(v) for v in value)
        out[key.kwarg] = value
    return out
