"""jool.config.globals: the NAT64 global keys (spec/globals.md, spec/cli.md §1.2-1.4)."""

import pytest

from jool.config import globals as g
from jool.config.globals import ConfigError

POOL6 = "64:ff9b::/96"

DEFAULT_TEXT = """\
  manually-enabled: true
  pool6: 64:ff9b::/96
  lowest-ipv6-mtu: 1280
  logging-debug: false
  zeroize-traffic-class: false
  override-tos: false
  tos: 0
  mtu-plateaus: 65535,32000,17914,8166,4352,2002,1492,1006,508,296,68
  address-dependent-filtering: false
  drop-externally-initiated-tcp: false
  drop-icmpv6-info: false
  source-icmpv6-errors-better: true
  f-args: 11 (0b1011): SrcAddr:1 SrcPort:0 DstAddr:1 DstPort:1
  handle-rst-during-fin-rcv: false
  tcp-est-timeout: 2:00:00 (HH:MM:SS)
  tcp-trans-timeout: 0:04:00 (HH:MM:SS)
  udp-timeout: 0:05:00 (HH:MM:SS)
  icmp-timeout: 0:01:00 (HH:MM:SS)
  logging-bib: false
  logging-session: false
  maximum-simultaneous-opens: 10
  ss-enabled: false
  ss-flush-asap: true
  ss-flush-deadline: 2000
  ss-capacity: 512
  ss-max-payload: 1452
"""

DEFAULT_CSV = """\
Field,Value
manually-enabled,TRUE
pool6,64:ff9b::/96
lowest-ipv6-mtu,1280
logging-debug,FALSE
zeroize-traffic-class,FALSE
override-tos,FALSE
tos,0
mtu-plateaus,"65535,32000,17914,8166,4352,2002,1492,1006,508,296,68"
address-dependent-filtering,FALSE
drop-externally-initiated-tcp,FALSE
drop-icmpv6-info,FALSE
source-icmpv6-errors-better,TRUE
f-args,11
handle-rst-during-fin-rcv,FALSE
tcp-est-timeout,2:00:00
tcp-trans-timeout,0:04:00
udp-timeout,0:05:00
icmp-timeout,0:01:00
logging-bib,FALSE
logging-session,FALSE
maximum-simultaneous-opens,10
ss-enabled,FALSE
ss-flush-asap,TRUE
ss-flush-deadline,2000
ss-capacity,512
ss-max-payload,1452
"""


def error(fn, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- the table

def test_keys_in_display_order():
    assert g.NAMES == (
        "manually-enabled", "pool6", "lowest-ipv6-mtu", "logging-debug",
        "zeroize-traffic-class", "override-tos", "tos", "mtu-plateaus",
        "address-dependent-filtering", "drop-externally-initiated-tcp", "drop-icmpv6-info",
        "source-icmpv6-errors-better", "f-args", "handle-rst-during-fin-rcv",
        "tcp-est-timeout", "tcp-trans-timeout", "udp-timeout", "icmp-timeout",
        "logging-bib", "logging-session", "maximum-simultaneous-opens", "ss-enabled",
        "ss-flush-asap", "ss-flush-deadline", "ss-capacity", "ss-max-payload")


def test_defaults():
    d = g.defaults(POOL6)
    assert list(d) == list(g.NAMES)
    assert d["pool6"] == POOL6
    assert d["manually-enabled"] is True and d["source-icmpv6-errors-better"] is True
    assert d["ss-flush-asap"] is True and d["logging-debug"] is False
    assert d["mtu-plateaus"] == [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68]
    assert (d["tcp-est-timeout"], d["tcp-trans-timeout"], d["udp-timeout"],
            d["icmp-timeout"]) == (7_200_000, 240_000, 300_000, 60_000)
    assert (d["f-args"], d["tos"], d["lowest-ipv6-mtu"], d["maximum-simultaneous-opens"]) \
        == (11, 0, 1280, 10)
    assert (d["ss-flush-deadline"], d["ss-capacity"], d["ss-max-payload"]) == (2000, 512, 1452)
    assert g.defaults(None)["pool6"] is None
    d["mtu-plateaus"].append(1)         # each call gets its own list
    assert len(g.defaults(POOL6)["mtu-plateaus"]) == 11


def test_defaults_pass_their_own_validation():
    for name, value in g.defaults(POOL6).items():
        assert g.validate(name, value, POOL6) == value


# ---------------------------------------------------------------- display

def test_default_display_text():
    assert "\n".join(g.display_lines(g.defaults(POOL6))) + "\n" == DEFAULT_TEXT
    # --no-headers does nothing to the text form
    assert g.display_lines(g.defaults(POOL6), headers=False) == g.display_lines(g.defaults(POOL6))


def test_default_display_csv():
    assert "\n".join(g.display_lines(g.defaults(POOL6), csv=True)) + "\n" == DEFAULT_CSV
    no_headers = g.display_lines(g.defaults(POOL6), csv=True, headers=False)
    assert no_headers == DEFAULT_CSV.splitlines()[1:]


def test_display_accepts_protocol_pairs_in_json_form():
    pairs = [[name, g.to_json(name, value)] for name, value in g.defaults(POOL6).items()]
    assert g.display_lines(pairs) == g.display_lines(g.defaults(POOL6))
    assert g.display_lines(pairs, csv=True) == g.display_lines(g.defaults(POOL6), csv=True)


@pytest.mark.parametrize("millis, text", [
    (300_000, "0:05:00"), (1500, "0:00:01.500"), (7_200_000, "2:00:00"), (0, "0:00:00"),
    (5, "0:00:00.005"), (90_061_001, "25:01:01.001"), (0xFFFFFFFF, "1193:02:47.295"),
])
def test_time_display(millis, text):
    assert g.format_time(millis) == text
    assert g.display_csv("udp-timeout", millis) == text
    assert g.display_text("udp-timeout", millis) == text + " (HH:MM:SS)"
    assert g.to_json("icmp-timeout", millis) == text
    assert g.parse_json("icmp-timeout", text) == millis     # round trip


@pytest.mark.parametrize("value, text", [
    (0, "0 (0b0000): SrcAddr:0 SrcPort:0 DstAddr:0 DstPort:0"),
    (11, "11 (0b1011): SrcAddr:1 SrcPort:0 DstAddr:1 DstPort:1"),
    (4, "4 (0b0100): SrcAddr:0 SrcPort:1 DstAddr:0 DstPort:0"),
    (15, "15 (0b1111): SrcAddr:1 SrcPort:1 DstAddr:1 DstPort:1"),
])
def test_fargs_display(value, text):
    assert g.display_text("f-args", value) == text
    assert g.display_csv("f-args", value) == str(value)


def test_misc_display():
    assert g.display_text("pool6", None) == "(unset)"
    assert g.display_csv("pool6", None) == ""
    assert g.display_text("pool6", "2001:db8::/32") == "2001:db8::/32"
    assert g.display_text("ss-enabled", True) == "true"
    assert g.display_csv("ss-enabled", False) == "FALSE"
    assert g.display_text("mtu-plateaus", [1500, 1280]) == "1500,1280"
    assert g.display_csv("mtu-plateaus", [1500, 1280]) == '"1500,1280"'
    assert g.display_csv("mtu-plateaus", [1500]) == '"1500"'
    assert g.display_text("tos", 255) == "255"
    assert g.display_csv("maximum-simultaneous-opens", 4294967295) == "4294967295"


def test_display_lines_unset_pool6():
    lines = g.display_lines(g.defaults(None))
    assert lines[1] == "  pool6: (unset)"
    assert g.display_lines(g.defaults(None), csv=True)[2] == "pool6,"


# ---------------------------------------------------------------- booleans

@pytest.mark.parametrize("text", ["true", "TRUE", "True", "1", "yes", "YeS", "on", "ON"])
def test_bool_true(text):
    assert g.parse_cli("ss-enabled", text) is True


@pytest.mark.parametrize("text", ["false", "FALSE", "0", "no", "NO", "off", "Off"])
def test_bool_false(text):
    assert g.parse_cli("manually-enabled", text) is False


@pytest.mark.parametrize("text", ["t", "2", "y", "", "enable", " true", "true ", "01"])
def test_bool_invalid(text):
    e = error(g.parse_cli, "logging-bib", text)
    assert e.code == 234
    assert e.message == f"Cannot parse '{text}' as a bool (true|false|1|0|yes|no|on|off)."


# ---------------------------------------------------------------- integers

@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1280", 1280), ("12abc", 12), ("0x10", 0), ("4294967295", 4294967295),
    ("007", 7), ("1500 ", 1500), ("3.9", 3), ("5-7", 5),
])
def test_u32(text, value):
    assert g.parse_cli("lowest-ipv6-mtu", text) == value


@pytest.mark.parametrize("text", ["abc", "", "-1", "+5", " 5", "x12", "\t1", ".5"])
def test_not_an_unsigned_integer_exits_1(text):
    for key in ("maximum-simultaneous-opens", "tos", "f-args", "ss-flush-deadline"):
        e = error(g.parse_cli, key, text)
        assert e.code == 1
        assert e.message == f"'{text}' is not an unsigned integer. (error code 1)"


def test_u32_out_of_bounds_exits_234():
    e = error(g.parse_cli, "ss-capacity", "4294967296")
    assert e.code == 234
    assert e.message == "'4294967296' is out of bounds (0-4294967295)."
    e = error(g.parse_cli, "ss-capacity", "18446744073709551615")
    assert e.code == 234


def test_beyond_64_bits_is_erange():
    e = error(g.parse_cli, "ss-capacity", "18446744073709551616")
    assert e.code == 34


@pytest.mark.parametrize("key", ["tos", "f-args"])
def test_u8_bounds(key):
    assert g.parse_cli(key, "255") == 255
    assert g.parse_cli(key, "0") == 0
    e = error(g.parse_cli, key, "256")
    assert (e.code, e.message) == (234, "'256' is out of bounds (0-255).")
    assert g.parse_cli(key, "0b11") == 0


def test_fargs_decimal_only():
    assert g.parse_cli("f-args", "0b1011") == 0
    assert g.parse_cli("f-args", "0x0F") == 0
    assert g.parse_cli("f-args", "16") == 16      # client accepts; translator refuses
    assert error(g.validate, "f-args", 16).code == 22
    assert g.validate("f-args", 15) == 15


def test_ss_flush_deadline_is_a_plain_integer():
    assert g.parse_cli("ss-flush-deadline", "2000") == 2000
    assert g.parse_cli("ss-flush-deadline", "0:02") == 0        # not a time


# ---------------------------------------------------------------- times

@pytest.mark.parametrize("text, millis", [
    ("0", 0), ("10", 10_000), ("1:00", 60_000), ("2:00:00", 7_200_000),
    ("0:05:00", 300_000), ("0:90", 90_000), ("1:", 60_000), ("1::", 3_600_000),
    ("1:2:3", 3_723_000), ("1.500", 1500), ("1.000", 1000), ("0.001", 1),
    ("1.1234", 2234), ("0:00:01.500", 1500), ("2:00:00.999", 7_200_999),
    ("1.0001", 1001), ("99:99:99", (99 * 3600 + 99 * 60 + 99) * 1000),
    ("", 0), (":5", 5000),
])
def test_time_parse(text, millis):
    assert g.parse_cli("udp-timeout", text) == millis


@pytest.mark.parametrize("text", ["1.5", "1.05", "1.", "1.12", "0:01.99"])
def test_time_fraction_needs_three_digits(text):
    e = error(g.parse_cli, "tcp-est-timeout", text)
    assert e.code == 234


@pytest.mark.parametrize("text", ["10s", "1:2:3:4", "abc", "1m", "1.500s", "1:2:3.4567x",
                                  "null", "1.abc", "1,5", "0x10"])
def test_time_trailing_junk(text):
    e = error(g.parse_cli, "icmp-timeout", text)
    assert e.code == 234
    assert e.message == f"'{text}' does not seem to follow the '[HH:[MM:]]SS[.mmm]' format."


def test_time_wraps_modulo_2_32():
    assert g.parse_cli("udp-timeout", "4294967.295") == 0xFFFFFFFF
    assert g.parse_cli("udp-timeout", "4294967.296") == 0
    assert g.parse_cli("udp-timeout", "4294968") == (4294968000 % 2**32)
    assert g.parse_cli("udp-timeout", "1193:02:47.296") == 0
    assert g.parse_cli("udp-timeout", "1193:02:48") == 704


def test_time_strtoull_leniencies():
    assert g.parse_cli("udp-timeout", " 5") == 5000          # leading blank
    assert g.parse_cli("udp-timeout", "+5") == 5000
    assert g.parse_cli("udp-timeout", "-1") == (-1000) % 2**32
    assert g.parse_cli("udp-timeout", "1: 30") == 90_000


def test_time_beyond_64_bits():
    assert error(g.parse_cli, "udp-timeout", "1" * 25).code == 34
    assert error(g.parse_cli, "udp-timeout", "1." + "9" * 25).code == 34


def test_time_minimums_are_translator_side():
    assert g.parse_cli("tcp-est-timeout", "1:00:00") == 3_600_000
    e = error(g.validate, "tcp-est-timeout", 3_600_000)
    assert e.code == 22
    assert g.validate("tcp-est-timeout", 7_200_000) == 7_200_000
    assert error(g.validate, "tcp-est-timeout", 7_199_999).code == 22
    assert g.validate("tcp-trans-timeout", 240_000) == 240_000
    assert error(g.validate, "tcp-trans-timeout", 239_999).code == 22
    assert g.validate("udp-timeout", 120_000) == 120_000
    assert error(g.validate, "udp-timeout", 119_999).code == 22
    assert g.validate("icmp-timeout", 0) == 0


# ---------------------------------------------------------------- plateaus

@pytest.mark.parametrize("text, values", [
    ("1500", [1500]), ("1500,1280", [1500, 1280]), ("1,,2", [1, 2]), (",1500,", [1500]),
    ("1280,1500", [1280, 1500]), ("0,1500", [0, 1500]), ("65535", [65535]),
    ("1500abc,1280", [1500, 1280]),
])
def test_plateaus_cli(text, values):
    assert g.parse_cli("mtu-plateaus", text) == values


def test_plateaus_leading_space_exits_1():
    e = error(g.parse_cli, "mtu-plateaus", "6000, 5000")
    assert e.code == 1
    assert e.message == "' 5000' is not an unsigned integer. (error code 1)"


def test_plateaus_cli_errors():
    assert error(g.parse_cli, "mtu-plateaus", "").code == 234
    assert error(g.parse_cli, "mtu-plateaus", ",,,").code == 234
    e = error(g.parse_cli, "mtu-plateaus", "65536")
    assert (e.code, e.message) == (234, "'65536' is out of bounds (0-65535).")
    assert g.parse_cli("mtu-plateaus", ",".join(["1"] * 64)) == [1] * 64
    assert error(g.parse_cli, "mtu-plateaus", ",".join(["1"] * 65)).code == 234
    # too many is detected before any item is parsed
    assert error(g.parse_cli, "mtu-plateaus", ",".join(["x"] * 65)).code == 234


def test_plateaus_translator_normalization():
    assert g.validate("mtu-plateaus", [1280, 1500, 1280, 0, 68]) == [1500, 1280, 68]
    assert g.validate("mtu-plateaus", [1]) == [1]
    e = error(g.validate, "mtu-plateaus", [0, 0])
    assert e.code == 22
    assert error(g.validate, "mtu-plateaus", []).code == 22
    assert error(g.validate, "mtu-plateaus", [1] * 65).code == 22
    assert error(g.validate, "mtu-plateaus", [70000]).code == 22


# ---------------------------------------------------------------- pool6

@pytest.mark.parametrize("text, value", [
    ("64:ff9b::/96", "64:ff9b::/96"), ("64:FF9B:0::/96", "64:ff9b::/96"),
    ("2001:db8::", "2001:db8::/128"), ("2001:db8::/", "2001:db8::/128"),
    ("2001:db8::/32abc", "2001:db8::/32"), ("2001:db8::/32/7", "2001:db8::/32"),
    ("64:ff9b::1/96", "64:ff9b::1/96"), ("null", None),
])
def test_pool6_cli(text, value):
    assert g.parse_cli("pool6", text) == value


def test_pool6_cli_errors():
    assert error(g.parse_cli, "pool6", "64:ff9b::/129").code == 234
    assert error(g.parse_cli, "pool6", "64:ff9b::/x").code == 1
    assert error(g.parse_cli, "pool6", "192.0.2.0/24").code == 234
    assert error(g.parse_cli, "pool6", "NULL").code == 234
    assert error(g.parse_cli, "pool6", "").code == 234
    assert error(g.parse_cli, "pool6", "1:2:3:4:5:6:7:8/96" + "0" * 40).code == 234


def test_pool6_translator_checks():
    assert g.validate("pool6", "64:ff9b::/96", None) == "64:ff9b::/96"
    for length in (32, 40, 48, 56, 64, 96):
        assert g.validate("pool6", f"2001:db8::/{length}", None) == f"2001:db8::/{length}"
    for bad in ("2001:db8::/33", "2001:db8::/128", "::/0"):
        assert error(g.validate, "pool6", bad, None).code == 22
    # host bits
    assert error(g.validate, "pool6", "64:ff9b::1/96", None).code == 22
    # u-octet (bits 64-71) unless --force
    assert error(g.validate, "pool6", "2001:db8:0:0:100::/96", None).code == 22
    assert g.validate("pool6", "2001:db8:0:0:100::/96", None, force=True) \
        == "2001:db8:0:0:100::/96"
    e = error(g.validate, "pool6", None, POOL6)
    assert (e.code, e.message) == (22, "pool6 is mandatory")
    assert error(g.validate, "pool6", None, None).message == "pool6 is mandatory"


def test_pool6_is_immutable_for_nat64():
    assert g.validate("pool6", "64:ff9b:0::/96", POOL6) == POOL6
    e = error(g.validate, "pool6", "2001:db8::/96", POOL6)
    assert (e.code, e.message) == (22, "can't change a NAT64 instance's pool6")
    assert error(g.validate, "pool6", "64:ff9b::/64", POOL6).code == 22


def test_lowest_ipv6_mtu():
    assert g.validate("lowest-ipv6-mtu", 1280) == 1280
    assert g.validate("lowest-ipv6-mtu", 9000) == 9000
    assert error(g.validate, "lowest-ipv6-mtu", 1279).code == 22


def test_validate_types():
    assert error(g.validate, "ss-enabled", 1).code == 22
    assert error(g.validate, "tos", 256).code == 22
    assert error(g.validate, "maximum-simultaneous-opens", -1).code == 22
    assert g.validate("maximum-simultaneous-opens", 0) == 0


# ---------------------------------------------------------------- JSON values

def test_json_booleans_only_literals():
    assert g.parse_json("ss-enabled", True) is True
    assert g.parse_json("ss-enabled", False) is False
    for bad in (1, 0, "true", None, [True]):
        assert error(g.parse_json, "ss-enabled", bad).code == 234


def test_json_times_only_strings():
    assert g.parse_json("udp-timeout", "0:05:00") == 300_000
    assert g.parse_json("udp-timeout", "1.1234") == 2234
    for bad in (300, 300.0, True, ["0:05:00"]):
        assert error(g.parse_json, "udp-timeout", bad).code == 234
    e = error(g.parse_json, "udp-timeout", None)    # null goes to the text parser
    assert e.message == "'null' does not seem to follow the '[HH:[MM:]]SS[.mmm]' format."
    assert error(g.parse_json, "udp-timeout", "5s").code == 234


def test_json_unsigned_integers():
    assert g.parse_json("tos", 255) == 255
    assert g.parse_json("tos", 7.9) == 7            # doubles are truncated
    assert g.parse_json("tos", -0.0) == 0
    assert error(g.parse_json, "tos", 256).code == 234
    assert error(g.parse_json, "tos", -1).code == 234
    assert error(g.parse_json, "tos", "5").code == 234
    assert error(g.parse_json, "tos", True).code == 234
    assert g.parse_json("ss-capacity", 4294967295) == 4294967295
    assert error(g.parse_json, "ss-capacity", 4294967296).code == 234
    assert g.parse_json("f-args", 255) == 255       # translator refuses > 15
    assert error(g.parse_json, "lowest-ipv6-mtu", None).code == 234


def test_json_plateaus():
    assert g.parse_json("mtu-plateaus", [1500, 1400, 1280]) == [1500, 1400, 1280]
    assert g.parse_json("mtu-plateaus", [1500.0]) == [1500]
    for bad in ("1500,1280", 1500, None, [1500, "1280"], [65536], [-1], [True]):
        assert error(g.parse_json, "mtu-plateaus", bad).code == 234


def test_json_pool6():
    assert g.parse_json("pool6", "64:ff9b::/96") == "64:ff9b::/96"
    assert g.parse_json("pool6", None) is None
    assert g.parse_json("pool6", "null") is None
    assert error(g.parse_json, "pool6", 96).code == 234
    assert error(g.parse_json, "pool6", "64:ff9b::/200").code == 234


def test_json_round_trip_of_every_default():
    for name, value in g.defaults(POOL6).items():
        assert g.parse_json(name, g.to_json(name, value)) == value


# ---------------------------------------------------------------- key matching

@pytest.mark.parametrize("word, key", [
    ("manually", "manually-enabled"), ("tcp-e", "tcp-est-timeout"),
    ("tcp-t", "tcp-trans-timeout"), ("pool6", "pool6"), ("tos", "tos"),
    ("f", "f-args"), ("ss-flush-a", "ss-flush-asap"), ("ss-flush-d", "ss-flush-deadline"),
    ("ss-e", "ss-enabled"), ("ss-m", "ss-max-payload"), ("u", "udp-timeout"),
    ("mtu", "mtu-plateaus"), ("max", "maximum-simultaneous-opens"), ("ss-c", "ss-capacity"),
    ("logging-d", "logging-debug"), ("z", "zeroize-traffic-class"),
    ("h", "handle-rst-during-fin-rcv"),
])
def test_resolve_key(word, key):
    assert g.resolve_key(word) == key


def test_every_full_label_resolves_to_itself():
    for name in g.NAMES:
        assert g.resolve_key(name) == name


def test_ambiguous_key():
    e = error(g.resolve_key, "ss-f")
    assert e.code == 234
    assert e.message == ("Ambiguous token: 'ss-f'\n"
                         "Available options: ss-flush-asap ss-flush-deadline ")
    e = error(g.resolve_key, "tcp")
    assert e.message.endswith("Available options: tcp-est-timeout tcp-trans-timeout ")
    assert error(g.resolve_key, "logging").code == 234
    assert error(g.resolve_key, "d").message.splitlines()[1] \
        == "Available options: drop-externally-initiated-tcp drop-icmpv6-info "


@pytest.mark.parametrize("word", ["trace", "amend-udp-checksum-zero", "eam-hairpin-mode",
                                  "randomize-rfc6791-addresses", "rfc6791v6-prefix",
                                  "rfc6791v4-prefix", "Tos", "POOL6", "--force", "x"])
def test_unknown_key(word):
    e = error(g.resolve_key, word)
    assert e.code == 234
    first, second = e.message.split("\n")
    assert first == f"Unexpected token: '{word}'"
    assert second == "Available options: " + "".join(n + " " for n in g.NAMES)


def test_parse_cli_needs_a_full_key():
    assert error(g.parse_cli, "eam-hairpin-mode", "off").code == 234


# ---------------------------------------------------------------- translator

def test_translator_kwargs():
    values = g.defaults(POOL6)
    values["udp-timeout"] = 600_000
    values["mtu-plateaus"] = [1500, 1280]
    kw = g.translator_kwargs(values)
    assert kw == {
        "manually_enabled": True, "pool6": POOL6, "lowest_ipv6_mtu": 1280,
        "zeroize_traffic_class": False, "override_tos": False, "tos": 0,
        "mtu_plateaus": (1500, 1280), "address_dependent_filtering": False,
        "drop_externally_initiated_tcp": False, "drop_icmpv6_info": False,
        "source_icmpv6_errors_better": True, "f_args": 11,
        "handle_rst_during_fin_rcv": False, "tcp_est_timeout": 7_200_000,
        "tcp_trans_timeout": 240_000, "udp_timeout": 600_000, "icmp_timeout": 60_000,
        "maximum_simultaneous_opens": 10,
    }
    assert not any(k.startswith(("logging", "ss")) for k in kw)
    # the JSON form of times is accepted too
    assert g.translator_kwargs({"icmp-timeout": "0:00:30"}) == {"icmp_timeout": 30_000}


def test_translator_accepts_the_kwargs():
    pipeline = pytest.importorskip("jool._fast.pipeline")
    pipeline.Translator(**g.translator_kwargs(g.defaults(POOL6)))


def test_validate_accepts_a_values_dict_and_json_times():
    current = g.defaults(POOL6)
    assert g.validate("pool6", "64:ff9b::/96", current) == POOL6
    assert error(g.validate, "pool6", "2001:db8::/96", current).code == 22
    assert g.validate("udp-timeout", "0:10:00", current) == 600_000
    assert error(g.validate, "udp-timeout", "0:01:00", current).code == 22
