"""Every invalid value of spec/globals.md and every kind of invalid atomic
configuration file of spec/config.md, through the real `jool` client and a real
control process (in a thread, no dataplane): a clear message on stderr, the exit
status spec/cli.md §4 gives, and nothing changed.

The cases are generated from the key table (jool.config.globals.KEYS, which
mirrors spec/globals.md §1), so a key added there is covered here too."""

import json
import os
import threading

import pytest

from cli_support import run_jool
from jool.config import globals as glb

# spec/cli.md §4
NOT_UNSIGNED = 1            # client: "not an unsigned integer"
TRANSLATOR_EINVAL = 22      # translator-side validation
CLIENT_EINVAL = 234         # client-side validation
DUPLICATE_TAG = 239
ERANGE = 34                 # beyond 64 bits


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """A control process of our own: its server loop in a thread, on a private
    socket and registry, with no dataplane (no workers, no kernel rules)."""
    tmp = tmp_path_factory.mktemp("invalid")
    saved = {k: os.environ.get(k) for k in ("JOOL_CONTROL_SOCKET", "JOOL_REGISTRY_DIR",
                                            "JOOL_DATAPLANE", "JOOL_CONTROL_COMMAND")}
    name = f"jool-test/invalid-{os.getpid()}"
    os.environ.update(JOOL_CONTROL_SOCKET=name, JOOL_REGISTRY_DIR=str(tmp / "registry"),
                      JOOL_DATAPLANE="0", JOOL_CONTROL_COMMAND="false")
    from jool.control.server import ControlServer
    server = ControlServer(name, exit_when_empty=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert run_jool("instance add --pool6 64:ff9b::/96").code == 0
        assert run_jool("pool4 add --udp 192.0.2.2 1-3000").code == 0
        assert run_jool("bib add --udp 2001:db8::5#2000 192.0.2.2#2000").code == 0
        yield server
    finally:
        server.running = False
        thread.join(5)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def snapshot():
    shots = [run_jool(["global", "display", "--csv"]).out]
    for proto in ("--tcp", "--udp", "--icmp"):
        shots.append(run_jool(["pool4", "display", "--csv", proto]).out)
        shots.append(run_jool(["bib", "display", "--csv", "--numeric", proto]).out)
    return shots


def refused(args, codes):
    """Runs a command that must fail: exit status in `codes`, a message, no change."""
    before = snapshot()
    result = run_jool(args)
    assert result.code in codes, (args, result.code, result.err)
    message = result.err.strip()
    # Jool's formats (spec/cli.md §1, §4): "Error: ...", "The command is missing
    # ...", the token matcher's, or argp's "<word>: invalid option ..." (exit 64).
    assert message.startswith(("Error:", "The command", "Unexpected token",
                               "Ambiguous token", "More arguments expected")) or (
        result.code == 64 and "option" in message), (args, message)
    assert snapshot() == before, (args, "the configuration changed")
    return result


# ------------------------------------------------------------------ command line

def cli_cases():
    """(key, value, allowed exit statuses) for every key, by its type."""
    cases = []
    for key in glb.KEYS:
        kind = key.type
        if kind is glb.BOOL:
            bad = [("maybe", {CLIENT_EINVAL}), ("2", {CLIENT_EINVAL}),
                   ("", {CLIENT_EINVAL})]
        elif kind in (glb.U8, glb.FARGS, glb.U32):
            top = glb.U8_MAX if kind is not glb.U32 else glb.U32_MAX
            # (trailing junk after digits is ignored, spec/cli.md §2: "12abc" is 12)
            bad = [("abc", {NOT_UNSIGNED}), ("-1", {NOT_UNSIGNED, 64}),
                   (str(top + 1), {CLIENT_EINVAL}),
                   ("1" * 25, {ERANGE, CLIENT_EINVAL})]
        elif kind is glb.TIME:
            # (fields are not range-checked: "0:60:00" is an hour)
            bad = [("abc", {CLIENT_EINVAL}), ("1:2:3:4", {CLIENT_EINVAL}),
                   ("10s", {CLIENT_EINVAL}), ("1.5", {CLIENT_EINVAL})]
        elif kind is glb.PLATEAUS:
            bad = [("abc", {NOT_UNSIGNED, CLIENT_EINVAL}), ("65536", {CLIENT_EINVAL}),
                   ("6000, 5000", {NOT_UNSIGNED}), (",".join(["1"] * 65), {CLIENT_EINVAL}),
                   ("0,0", {TRANSLATOR_EINVAL})]
        elif kind is glb.POOL6:
            bad = [("64:ff9b::/95", {TRANSLATOR_EINVAL, CLIENT_EINVAL}),
                   ("64:ff9b::1/96", {TRANSLATOR_EINVAL}),
                   ("2001:db8::/96", {TRANSLATOR_EINVAL}),
                   ("null", {TRANSLATOR_EINVAL}), ("nonsense", {CLIENT_EINVAL})]
        else:
            raise AssertionError(f"no invalid values for the type of {key.name}")
        if key.minimum is not None:
            below = key.minimum - 1000 if kind is glb.TIME else key.minimum - 1
            text = glb.format_time(below) if kind is glb.TIME else str(below)
            bad.append((text, {TRANSLATOR_EINVAL}))
        if key.maximum is not None:
            bad.append((str(key.maximum + 1), {TRANSLATOR_EINVAL}))
        cases += [(key.name, value, codes) for value, codes in bad]
    return cases


CLI_CASES = cli_cases()


@pytest.mark.parametrize("key,value,codes", CLI_CASES,
                         ids=[f"{k}={v!r}" for k, v, _ in CLI_CASES])
def test_invalid_global_value_on_the_command_line(control, key, value, codes):
    refused(["global", "update", key, value], codes)


@pytest.mark.parametrize("args,codes", [
    ("global update no-such-key 1", {CLIENT_EINVAL}),
    ("global update amend-udp-checksum-zero true", {CLIENT_EINVAL}),     # SIIT only
    ("global update", {CLIENT_EINVAL}),
    ("global update tos", {CLIENT_EINVAL}),
    ("pool4 add --udp 192.0.2.300 1-2", {CLIENT_EINVAL}),
    ("pool4 add --udp 192.0.2.0/33 1-2", {CLIENT_EINVAL}),
    ("pool4 add --udp 192.0.2.1/24 1-2", {TRANSLATOR_EINVAL}),          # host bits
    ("pool4 add --udp 198.51.100.0/16 1-2", {249}),                    # needs --force
    ("pool4 add --udp 192.0.2.2 x-5", {NOT_UNSIGNED}),
    ("pool4 add --udp 192.0.2.2 tcp", {NOT_UNSIGNED}),
    ("pool4 add --udp --mark abc 192.0.2.2 1-2", {NOT_UNSIGNED}),
    ("pool4 add --udp --max-iterations 0 192.0.2.2 1-2", {TRANSLATOR_EINVAL}),
    ("pool4 add --udp --tcp 192.0.2.2 1-2", {CLIENT_EINVAL}),
    ("pool4 add --udp 192.0.2.2 1-2 extra", {NOT_UNSIGNED}),   # a second port range
    ("bib add --udp 2001:db8::5#70000 192.0.2.2#1", {CLIENT_EINVAL}),
    ("bib add --udp 2001:db8::5 192.0.2.2#1", {CLIENT_EINVAL}),
    ("bib add --udp 2001:db8::9#1 203.0.113.1#1", {TRANSLATOR_EINVAL}),  # not in pool4
    ("bib add --udp 2001:db8::9#2000 192.0.2.2#2000", {17}),             # collision
    ("bib remove --udp 2001:db8::99#1", {3}),
    ("-i nothere global display", {3}),
    ("-i name-of-more-than-15 global display", {CLIENT_EINVAL}),
    ("instance add --pool6 64:ff9b::/96", {17}),
    ("session display --udp --tcp", {CLIENT_EINVAL}),
    ("stats display --bogus", {64}),
])
def test_invalid_command(control, args, codes):
    refused(args, codes)


# ------------------------------------------------------------------ atomic files

BASE = {"instance": "default", "framework": "netfilter",
        "global": {"pool6": "64:ff9b::/96"},
        "pool4": [{"protocol": "UDP", "prefix": "192.0.2.2", "port range": "1-3000"}],
        "bib": [{"protocol": "UDP", "ipv6 address": "2001:db8::5#2000",
                 "ipv4 address": "192.0.2.2#2000"}]}


def with_change(path, value):
    """BASE with the member at `path` (a tuple of keys / indexes) set (or removed
    when value is REMOVE)."""
    doc = json.loads(json.dumps(BASE))
    node = doc
    for step in path[:-1]:
        node = node[step]
    if value is REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(doc)


REMOVE = object()


def json_type_cases():
    """A value of the wrong JSON type for every global key."""
    cases = []
    for key in glb.KEYS:
        if key.type is glb.BOOL:
            wrong = ["true", 1]
        elif key.type is glb.TIME:
            wrong = [60000, True]                   # the time format is a string
        elif key.type is glb.PLATEAUS:
            wrong = ["1500,1280", [1500, "x"], [70000]]
        elif key.type is glb.POOL6:
            continue                                # checked with the file cases below
        else:
            # (a fractional number is cut, as Jool's JSON parser does: 1.5 is 1)
            wrong = ["10", -1, True, None, [1], glb.U32_MAX + 1]
        cases += [(key.name, value) for value in wrong]
    return cases


JSON_CASES = json_type_cases()


@pytest.mark.parametrize("key,value", JSON_CASES, ids=[f"{k}={v!r}" for k, v in JSON_CASES])
def test_wrong_json_type_in_a_file(control, tmp_path, key, value):
    path = tmp_path / "bad.json"
    path.write_text(with_change(("global", key), value))
    refused(["file", "handle", str(path)], {CLIENT_EINVAL, TRANSLATOR_EINVAL})


FILE_CASES = [
    ("syntax error", '{"instance": "default", ', {CLIENT_EINVAL}),
    ("root is an array", "[]", {CLIENT_EINVAL}),
    ("unknown root tag", with_change(("eamt",), []), {CLIENT_EINVAL}),
    ("unknown global", with_change(("global", "trace"), True), {CLIENT_EINVAL}),
    ("SIIT-only global", with_change(("global", "eam-hairpin-mode"), "simple"),
     {CLIENT_EINVAL, TRANSLATOR_EINVAL}),
    ("duplicate tag", '{"instance": "default", "instance": "default", '
                      '"framework": "netfilter", "global": {"pool6": "64:ff9b::/96"}}',
     {DUPLICATE_TAG}),
    ("no instance", with_change(("instance",), REMOVE), {CLIENT_EINVAL}),
    ("no framework", with_change(("framework",), REMOVE), {CLIENT_EINVAL}),
    ("framework in capitals", with_change(("framework",), "Netfilter"), {CLIENT_EINVAL}),
    ("instance name too long", with_change(("instance",), "x" * 16), {CLIENT_EINVAL}),
    ("other framework", with_change(("framework",), "iptables"), {TRANSLATOR_EINVAL}),
    ("other pool6", with_change(("global", "pool6"), "2001:db8:64::/96"),
     {TRANSLATOR_EINVAL}),
    ("no pool6", with_change(("global", "pool6"), None), {TRANSLATOR_EINVAL}),
    ("pool4 port range as a number", with_change(("pool4", 0, "port range"), 100),
     {CLIENT_EINVAL}),
    ("pool4 without protocol", with_change(("pool4", 0, "protocol"), REMOVE),
     {CLIENT_EINVAL}),
    ("pool4 bad protocol", with_change(("pool4", 0, "protocol"), "SCTP"), {CLIENT_EINVAL}),
    ("pool4 bad prefix", with_change(("pool4", 0, "prefix"), "192.0.2.300"),
     {CLIENT_EINVAL}),
    ("pool4 max-iterations 0", with_change(("pool4", 0, "max-iterations"), 0),
     {TRANSLATOR_EINVAL, CLIENT_EINVAL}),
    ("pool4 max-iterations word", with_change(("pool4", 0, "max-iterations"), "Auto"),
     {CLIENT_EINVAL}),
    ("pool4 mark negative", with_change(("pool4", 0, "mark"), -1), {CLIENT_EINVAL}),
    ("pool4 unknown member", with_change(("pool4", 0, "ports"), "1-2"), {CLIENT_EINVAL}),
    ("pool4 not an array", with_change(("pool4",), {}), {CLIENT_EINVAL}),
    ("bib without ipv4 address", with_change(("bib", 0, "ipv4 address"), REMOVE),
     {CLIENT_EINVAL}),
    ("bib address without port", with_change(("bib", 0, "ipv6 address"), "2001:db8::5"),
     {CLIENT_EINVAL}),
    ("bib outside pool4", with_change(("bib", 0, "ipv4 address"), "203.0.113.1#5"),
     {TRANSLATOR_EINVAL}),
]


@pytest.mark.parametrize("text,codes", [(t, c) for _, t, c in FILE_CASES],
                         ids=[n for n, _, _ in FILE_CASES])
def test_invalid_file(control, tmp_path, text, codes):
    path = tmp_path / "bad.json"
    path.write_text(text)
    refused(["file", "handle", str(path)], codes)


def test_the_valid_base_file_is_accepted(control, tmp_path):
    """The cases above are BASE with one thing wrong: BASE itself must pass."""
    path = tmp_path / "good.json"
    path.write_text(json.dumps(BASE))
    result = run_jool(["file", "handle", str(path)])
    assert result.code == 0, result.err
