"""jool.config.atomic: atomic configuration files (spec/config.md)."""

import json

import pytest

from jool.config import atomic
from jool.config.globals import ConfigError

MINIMAL = '{"instance":"x","framework":"netfilter","global":{"pool6":"64:ff9b::/96"}}'

EXAMPLE = """{
  "comment": "edge NAT64",
  "instance": "edge",
  "framework": "netfilter",
  "global": { "pool6": "64:ff9b::/96", "udp-timeout": "0:10:00",
              "mtu-plateaus": [1500, 1400, 1280], "ss-enabled": true },
  "pool4": [
    { "protocol": "TCP",  "prefix": "198.51.100.8/30", "port range": "1024-65535" },
    { "protocol": "udp",  "prefix": "198.51.100.8/30", "max-iterations": "infinity" },
    { "protocol": "ICMP", "prefix": "198.51.100.8/30", "port range": "0-65535", "mark": 7 }
  ],
  "bib": [ { "protocol": "TCP", "ipv6 address": "2001:db8::10#443",
             "ipv4 address": "198.51.100.8#1443" } ]
}"""


def doc(**members):
    """A file with instance/framework plus `members` (None deletes a member)."""
    root = {"instance": "x", "framework": "netfilter"}
    root.update(members)
    return json.dumps({k: v for k, v in root.items() if v is not None})


def error(text, **kwargs):
    with pytest.raises(ConfigError) as info:
        atomic.loads(text, **kwargs)
    return info.value


def pool4(*entries):
    return atomic.loads(doc(pool4=list(entries)))["pool4"]


def bib(*entries):
    return atomic.loads(doc(bib=list(entries)))["bib"]


def glob(**values):
    return atomic.loads(doc(**{"global": values}))["global"]


# ---------------------------------------------------------------- valid files

def test_minimal():
    assert atomic.loads(MINIMAL) == {
        "instance": "x", "framework": "netfilter", "global": {"pool6": "64:ff9b::/96"},
        "pool4": [], "bib": [], "order": ["global"]}


def test_example_normalized():
    assert atomic.loads(EXAMPLE) == {
        "instance": "edge", "framework": "netfilter",
        "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:10:00",
                   "mtu-plateaus": [1500, 1400, 1280], "ss-enabled": True},
        "pool4": [
            {"proto": "tcp", "prefix": "198.51.100.8/30", "min": 1024, "max": 65535,
             "mark": 0, "max_iterations": "keep"},
            {"proto": "udp", "prefix": "198.51.100.8/30", "min": 61001, "max": 65535,
             "mark": 0, "max_iterations": "infinity"},
            {"proto": "icmp", "prefix": "198.51.100.8/30", "min": 0, "max": 65535,
             "mark": 7, "max_iterations": "keep"},
        ],
        "bib": [{"proto": "tcp", "addr6": "2001:db8::10", "port6": 443,
                 "addr4": "198.51.100.8", "port4": 1443}],
        "order": ["global", "pool4", "bib"],
    }


def test_normalized_form_is_json_serializable():
    assert json.loads(json.dumps(atomic.loads(EXAMPLE))) == atomic.loads(EXAMPLE)


def test_iptables_framework_and_no_tables():
    out = atomic.loads('{"instance":"a","framework":"iptables"}')
    assert out == {"instance": "a", "framework": "iptables", "global": {}, "pool4": [],
                   "bib": [], "order": []}


def test_order_follows_the_file():
    text = '{"bib":[],"instance":"x","pool4":[],"framework":"netfilter","global":{}}'
    assert atomic.loads(text)["order"] == ["bib", "pool4", "global"]


def test_trailing_garbage_is_ignored():
    assert atomic.loads(MINIMAL + " this is not JSON {{{")["instance"] == "x"
    assert atomic.loads(MINIMAL + "}")["instance"] == "x"
    assert atomic.loads("\n\t " + MINIMAL)["instance"] == "x"


def test_tags_are_case_insensitive():
    text = ('{"INSTANCE":"x","FrameWork":"netfilter","Global":{"TOS":5,"Pool6":"64:ff9b::/96"},'
            '"POOL4":[{"PROTOCOL":"tcp","Prefix":"192.0.2.1","Port Range":"1-2","MARK":3,'
            '"Max-Iterations":9}],'
            '"BIB":[{"Protocol":"udp","IPv6 Address":"2001:db8::1#5",'
            '"IPV4 ADDRESS":"192.0.2.1#1"}]}')
    out = atomic.loads(text)
    assert out["global"] == {"tos": 5, "pool6": "64:ff9b::/96"}
    assert out["pool4"] == [{"proto": "tcp", "prefix": "192.0.2.1/32", "min": 1, "max": 2,
                             "mark": 3, "max_iterations": 9}]
    assert out["bib"][0]["proto"] == "udp"


def test_comments_anywhere_any_type():
    text = """{
      "comment": "root", "Comment": 5, "COMMENT": {"nested": [1, 2]},
      "instance": "x", "framework": "netfilter",
      "global": {"comment": null, "tos": 1, "comment": ["a"]},
      "pool4": [{"comment": true, "protocol": "TCP", "prefix": "192.0.2.1", "comment": 1}],
      "bib": [{"comment": "static", "protocol": "TCP", "ipv6 address": "2001:db8::1#80",
               "ipv4 address": "192.0.2.1#80"}]
    }"""
    out = atomic.loads(text)
    assert out["global"] == {"tos": 1}
    assert len(out["pool4"]) == 1 and len(out["bib"]) == 1


# ---------------------------------------------------------------- syntax

@pytest.mark.parametrize("text, rest", [
    ("", ""), ("   ", ""), ("{", ""), ('{"instance" "x"}', '"x"}'), ("{'a': 1}", "'a': 1}"),
    ('{"a": 1,}', "}"), ('{"a": [1,]}', "]}"), ("nope", "nope"), ('{"a": tru}', "tru}"),
    ('{"a": 1 "b": 2}', '"b": 2}'),
])
def test_syntax_errors(text, rest):
    e = error(text)
    assert e.code == 234
    assert e.message.endswith("\n" + rest)


def test_syntax_error_reports_where_parsing_stopped():
    e = error('{"instance": "x",\n "framework": netfilter}')
    assert e.message.splitlines()[-1] == "netfilter}"


def test_parser_leniencies():
    reader = atomic.parse_json_text
    assert reader("nullx") is None
    assert reader("[1e3, -0, 0123, 1.5, -, 2E-1]") == [1000.0, 0.0, 123.0, 1.5, 0.0, 0.2]
    assert reader('"abc') == "abc"                       # unterminated string
    assert reader(r'"a\"b\n\u0041\q"') == 'a"b\nAq'
    assert reader(r'"\ud83d\ude00"') == "\U0001F600"
    assert reader('{"a":1,"a":2}') == [("a", 1.0), ("a", 2.0)]
    assert reader("[1]\0garbage") == [1.0]


def test_root_must_be_an_object():
    for text in ("[]", '"x"', "5", "null", "true"):
        assert error(text).code == 234


# ---------------------------------------------------------------- root tags

def test_unknown_root_tag():
    e = error(doc(pools4=[]))
    assert (e.code, e.message) == (234, "Unknown tag: 'pools4'")


@pytest.mark.parametrize("tag", ["eamt", "denylist4", "blacklist4", "EAMT"])
def test_siit_tags_rejected(tag):
    e = error(doc(**{tag: []}))
    assert (e.code, e.message) == (234, f"Unknown tag: '{tag}'")


def test_repeated_root_tag():
    e = error('{"instance":"x","framework":"netfilter","pool4":[],"pool4":[]}')
    assert (e.code, e.message) == (239, "Multiple 'pool4' tags found. Aborting...")
    e = error('{"instance":"x","Instance":"x","framework":"netfilter"}')
    assert (e.code, e.message) == (239, "Multiple 'instance' tags found. Aborting...")
    assert error('{"instance":"x","framework":"netfilter","global":{},"GLOBAL":{}}').code == 239
    # comments may repeat
    assert atomic.loads('{"comment":1,"comment":2,"instance":"x","framework":"netfilter"}')


def test_instance_is_required_even_with_i():
    text = '{"framework":"netfilter"}'
    for kwargs in ({}, {"instance": "x"}):
        e = error(text, **kwargs)
        assert (e.code, e.message) == (234, "Object '<unnamed>' is missing the 'instance' child.")


def test_framework_is_required():
    e = error('{"instance":"x"}')
    assert (e.code, e.message) == (234, "Object '<unnamed>' is missing the 'framework' child.")
    # instance is reported first when both are missing
    assert "'instance'" in error("{}").message


@pytest.mark.parametrize("framework", ["Netfilter", "NETFILTER", "nf", "", "iptables ", "xtables"])
def test_framework_exact(framework):
    assert error(doc(framework=framework)).code == 234


def test_framework_and_instance_must_be_strings():
    assert error(doc(framework=1)).code == 234
    assert error('{"instance":5,"framework":"netfilter"}').code == 234


def test_dash_i_must_agree():
    assert atomic.loads(MINIMAL, instance="x")["instance"] == "x"
    assert error(MINIMAL, instance="y").code == 234


@pytest.mark.parametrize("name", ["a" * 16, "tab\there", "caf\u00e9", "nl\n"])
def test_bad_instance_names(name):
    e = error(doc(instance=name))
    assert e.code == 234
    assert e.message.endswith("15 characters max.")


def test_good_instance_names():
    for name in ("a" * 15, "default", "with space", "~!@#$%^&*()", ""):
        assert atomic.loads(doc(instance=name))["instance"] == name


# ---------------------------------------------------------------- global

def test_global_values_are_normalized_to_canonical_json():
    assert glob(**{"udp-timeout": "600", "icmp-timeout": "1.1234", "tos": 7.9,
                   "pool6": "64:FF9B::/96", "mtu-plateaus": [1280, 0, 1500]}) == {
        "udp-timeout": "0:10:00", "icmp-timeout": "0:00:02.234", "tos": 7,
        "pool6": "64:ff9b::/96", "mtu-plateaus": [1280, 0, 1500]}
    assert glob(pool6=None) == {"pool6": None}


def test_global_json_types():
    assert error(doc(**{"global": {"ss-enabled": 1}})).code == 234
    assert error(doc(**{"global": {"ss-enabled": "true"}})).code == 234
    assert error(doc(**{"global": {"udp-timeout": 300}})).code == 234
    assert error(doc(**{"global": {"tos": 256}})).code == 234
    assert error(doc(**{"global": {"tos": "5"}})).code == 234
    assert error(doc(**{"global": {"mtu-plateaus": "1500,1280"}})).code == 234
    assert error(doc(**{"global": {"lowest-ipv6-mtu": -1}})).code == 234
    assert error(doc(**{"global": {"udp-timeout": "10s"}})).code == 234
    assert error(doc(**{"global": {"pool6": 5}})).code == 234


def test_global_must_be_an_object():
    for bad in ([], "x", 5):
        assert error(doc(**{"global": bad})).code == 234
    assert error('{"instance":"x","framework":"netfilter","global":null}').code == 234


def test_global_unknown_and_siit_keys():
    e = error(doc(**{"global": {"trace": True}}))
    assert (e.code, e.message) == (234, "Unknown tag: 'trace'")
    for key in ("amend-udp-checksum-zero", "eam-hairpin-mode", "randomize-rfc6791-addresses",
                "rfc6791v6-prefix", "rfc6791v4-prefix"):
        assert error(doc(**{"global": {key: None}})).code == 234
    # no prefix matching in files
    assert error(doc(**{"global": {"tcp-e": "2:00:00"}})).code == 234


def test_global_repeated_key():
    text = '{"instance":"x","framework":"netfilter","global":{"tos":1,"TOS":2}}'
    e = error(text)
    assert (e.code, e.message) == (239, "Multiple 'tos' tags found. Aborting...")


def test_global_time_errors_keep_their_exit_codes():
    assert error(doc(**{"global": {"udp-timeout": "1" * 25}})).code == 34


# ---------------------------------------------------------------- pool4

def test_pool4_defaults():
    assert pool4({"protocol": "udp", "prefix": "192.0.2.0/30"}) == [
        {"proto": "udp", "prefix": "192.0.2.0/30", "min": 61001, "max": 65535, "mark": 0,
         "max_iterations": "keep"}]


def test_pool4_required_members():
    e = error(doc(pool4=[{"prefix": "192.0.2.1"}]))
    assert (e.code, e.message) == (234, "Object '<unnamed>' is missing the 'protocol' child.")
    e = error(doc(pool4=[{"protocol": "tcp"}]))
    assert (e.code, e.message) == (234, "Object '<unnamed>' is missing the 'prefix' child.")
    assert "'protocol'" in error(doc(pool4=[{}])).message


def test_pool4_protocol():
    assert [e["proto"] for e in pool4({"protocol": "Tcp", "prefix": "192.0.2.1"},
                                      {"protocol": "uDP", "prefix": "192.0.2.1"},
                                      {"protocol": "icmp", "prefix": "192.0.2.1"})] \
        == ["tcp", "udp", "icmp"]
    assert error(doc(pool4=[{"protocol": "sctp", "prefix": "192.0.2.1"}])).code == 234
    assert error(doc(pool4=[{"protocol": 6, "prefix": "192.0.2.1"}])).code == 234


@pytest.mark.parametrize("text, ports", [
    ("1024-65535", (1024, 65535)), ("80", (80, 80)), ("20-10", (20, 10)),
    ("10-20-30", (10, 20)), ("5x-9", (5, 5)), ("0-65535", (0, 65535)), ("7 - 9", (7, 7)),
])
def test_pool4_port_range(text, ports):
    entry = pool4({"protocol": "tcp", "prefix": "192.0.2.1", "port range": text})[0]
    assert (entry["min"], entry["max"]) == ports


@pytest.mark.parametrize("text, code", [
    ("1000-", 1), ("tcp", 1), ("", 1), ("-5", 1), ("70000", 234), ("1-70000", 234),
    ("1-x", 1),
])
def test_pool4_port_range_errors(text, code):
    e = error(doc(pool4=[{"protocol": "tcp", "prefix": "192.0.2.1", "port range": text}]))
    assert e.code == code


def test_pool4_port_range_must_be_a_string():
    for bad in (80, [1, 2], None):
        e = error(doc(pool4=[{"protocol": "tcp", "prefix": "192.0.2.1", "port range": bad}]))
        assert e.code == 234


@pytest.mark.parametrize("text, prefix", [
    ("192.0.2.1", "192.0.2.1/32"), ("192.0.2.0/24", "192.0.2.0/24"),
    ("192.0.2.1/24", "192.0.2.1/24"),      # host bits: the translator's problem
    ("192.0.2.1/", "192.0.2.1/32"), ("192.0.2.0/24x", "192.0.2.0/24"), ("10.0.0.0/8", "10.0.0.0/8"),
])
def test_pool4_prefix(text, prefix):
    assert pool4({"protocol": "tcp", "prefix": text})[0]["prefix"] == prefix


@pytest.mark.parametrize("text, code", [
    ("192.0.2", 234), ("192.0.2.256", 234), ("2001:db8::1", 234), ("192.0.2.0/33", 234),
    ("192.0.2.0/x", 1), ("", 234), ("192.168.100.200/32x", 234),
])
def test_pool4_prefix_errors(text, code):
    assert error(doc(pool4=[{"protocol": "tcp", "prefix": text}])).code == code


def test_pool4_mark():
    assert pool4({"protocol": "tcp", "prefix": "192.0.2.1", "mark": 4294967295})[0]["mark"] \
        == 4294967295
    for bad in (-1, 4294967296, "7", True, None):
        assert error(doc(pool4=[{"protocol": "tcp", "prefix": "192.0.2.1", "mark": bad}])).code \
            == 234


@pytest.mark.parametrize("value, out", [
    ("auto", "auto"), ("infinity", "infinity"), (1, 1), (4294967295, 4294967295), (10.0, 10),
])
def test_pool4_max_iterations(value, out):
    entry = pool4({"protocol": "tcp", "prefix": "192.0.2.1", "max-iterations": value})[0]
    assert entry["max_iterations"] == out


@pytest.mark.parametrize("value", ["Auto", "INFINITY", "5", 0, -1, True, None, [1]])
def test_pool4_max_iterations_errors(value):
    e = error(doc(pool4=[{"protocol": "tcp", "prefix": "192.0.2.1", "max-iterations": value}]))
    assert e.code == 234


def test_pool4_unknown_and_repeated_members():
    e = error(doc(pool4=[{"protocol": "tcp", "prefix": "192.0.2.1", "ports": "1-2"}]))
    assert (e.code, e.message) == (234, "Unknown tag: 'ports'")
    text = ('{"instance":"x","framework":"netfilter","pool4":'
            '[{"protocol":"tcp","prefix":"192.0.2.1","Prefix":"192.0.2.2"}]}')
    e = error(text)
    assert (e.code, e.message) == (239, "Multiple 'prefix' tags found. Aborting...")


def test_pool4_must_be_an_array_of_objects():
    assert error(doc(pool4={"protocol": "tcp"})).code == 234
    assert error(doc(pool4=["192.0.2.1"])).code == 234
    assert error('{"instance":"x","framework":"netfilter","pool4":null}').code == 234


def test_no_force_rule_for_short_prefixes_in_files():
    assert pool4({"protocol": "tcp", "prefix": "10.0.0.0/16"})[0]["prefix"] == "10.0.0.0/16"


# ---------------------------------------------------------------- bib

def test_bib_entry():
    assert bib({"protocol": "icmp", "ipv6 address": "2001:DB8::1#7",
                "ipv4 address": "192.0.2.1#8"}) == [
        {"proto": "icmp", "addr6": "2001:db8::1", "port6": 7, "addr4": "192.0.2.1", "port4": 8}]


def test_bib_port_quirks():
    entry = bib({"protocol": "tcp", "ipv6 address": "2001:db8::1#1#2",
                 "ipv4 address": "192.0.2.1#80abc"})[0]
    assert (entry["port6"], entry["port4"]) == (1, 80)


@pytest.mark.parametrize("member, value, code", [
    ("ipv6 address", "2001:db8::1", 234), ("ipv6 address", "192.0.2.1#5", 234),
    ("ipv6 address", "2001:db8::1#x", 1), ("ipv6 address", "2001:db8::1#65536", 234),
    ("ipv4 address", "192.0.2.1", 234), ("ipv4 address", "192.0.2.1#", 234),
    ("ipv4 address", "2001:db8::1#5", 234), ("ipv4 address", 80, 234),
    ("protocol", "ip", 234),
])
def test_bib_errors(member, value, code):
    entry = {"protocol": "tcp", "ipv6 address": "2001:db8::1#1", "ipv4 address": "192.0.2.1#1"}
    entry[member] = value
    assert error(doc(bib=[entry])).code == code


def test_bib_required_members():
    full = {"protocol": "tcp", "ipv6 address": "2001:db8::1#1", "ipv4 address": "192.0.2.1#1"}
    for missing in full:
        entry = {k: v for k, v in full.items() if k != missing}
        e = error(doc(bib=[entry]))
        assert (e.code, e.message) == (234, f"Object '<unnamed>' is missing the '{missing}' child.")


def test_bib_unknown_member():
    entry = {"protocol": "tcp", "ipv6 address": "2001:db8::1#1", "ipv4 address": "192.0.2.1#1",
             "static": True}
    assert error(doc(bib=[entry])).message == "Unknown tag: 'static'"


# ---------------------------------------------------------------- files

def test_load_file_and_text(tmp_path):
    path = tmp_path / "nat64.json"
    path.write_text(EXAMPLE)
    assert atomic.load(str(path)) == atomic.loads(EXAMPLE)
    assert atomic.load(path) == atomic.loads(EXAMPLE)
    assert atomic.load_file(path, instance="edge")["instance"] == "edge"
    assert atomic.load(EXAMPLE)["instance"] == "edge"
    assert atomic.load(EXAMPLE.encode())["instance"] == "edge"
    assert atomic.load("  " + MINIMAL)["instance"] == "x"


def test_missing_file_exits_with_errno(tmp_path):
    with pytest.raises(ConfigError) as info:
        atomic.load(str(tmp_path / "absent.json"))
    assert info.value.code == 2
    assert info.value.message == (f'Could not open file "{tmp_path / "absent.json"}": '
                                  "No such file or directory")


def test_instance_from_file(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"whatever": [1, 2], "INSTANCE": "alpha", "framework": 7}')
    assert atomic.instance_from_file(path) == "alpha"
    path.write_text('{"framework": "netfilter"}')
    with pytest.raises(ConfigError) as info:
        atomic.instance_from_file(path)
    assert info.value.code == 234


def test_objects_and_arrays_are_told_apart():
    e = error('{"instance":"x","framework":"netfilter","pool4":{"protocol":"tcp"}}')
    assert (e.code, e.message) == (234, "The 'pool4' element (an object) is not a valid array.")
    e = error('{"instance":"x","framework":"netfilter","global":{"mtu-plateaus":{"a":1}}}')
    assert e.code == 234 and "(an object)" in e.message
    e = error('{"instance":"x","framework":"netfilter","global":[]}')
    assert e.code == 234 and "(an array)" in e.message


def test_server_side_reading_of_the_normalized_globals():
    """What the control process does with `global`: parse_json, then validate."""
    from jool.config import globals as g
    out = atomic.loads(EXAMPLE)
    values = g.defaults(None)
    for key, value in out["global"].items():
        values[key] = g.validate(key, g.parse_json(key, value), None)
    assert values["udp-timeout"] == 600_000
    assert values["mtu-plateaus"] == [1500, 1400, 1280]
    assert values["ss-enabled"] is True and values["pool6"] == "64:ff9b::/96"
    # a file without pool6 leaves the candidate without one
    assert g.defaults(None)["pool6"] is None


def test_case_folding_is_ascii_only():
    entry = '{"protocol":"tcp","prefix":"192.0.2.1","MAR\\u212a":1}'     # KELVIN SIGN
    e = error('{"instance":"x","framework":"netfilter","pool4":[' + entry + ']}')
    assert e.code == 234 and e.message.startswith("Unknown tag: 'MAR")
