"""Conformance of the `jool` client to spec/cli.md, against an in-process fake
control process (tests/cli/fakecontrol.py).

Each line of CASES is one command line with its expected exit status, stdout and
stderr.  Every failing command is also checked to have changed nothing: the
displays (globals, pool4 and BIB of the three protocols, instance status) are
compared before and after, and client-side failures must not even have reached
the translator.
"""

import json
import os
import re
import socket

import pytest

from cli_support import run_jool

from jool.cli import printers
from jool.cli.jool import help_text, usage_text

HELP = help_text()
ROOT_LABELS = "instance stats global pool4 bib session file joold "
GLOBAL_KEYS = ("manually-enabled pool6 lowest-ipv6-mtu logging-debug zeroize-traffic-class "
               "override-tos tos mtu-plateaus address-dependent-filtering "
               "drop-externally-initiated-tcp drop-icmpv6-info source-icmpv6-errors-better "
               "f-args handle-rst-during-fin-rcv tcp-est-timeout tcp-trans-timeout "
               "udp-timeout icmp-timeout logging-bib logging-session "
               "maximum-simultaneous-opens ss-enabled ss-flush-asap ss-flush-deadline "
               "ss-capacity ss-max-payload ")
CLIENT_SIDE = {1, 2, 34, 64, 234, 239, 249}


class In:
    def __init__(self, *parts):
        self.parts = parts

    def check(self, text):
        return all(p in text for p in self.parts)

    def __repr__(self):
        return f"In{self.parts!r}"


class Re:
    def __init__(self, pattern):
        self.pattern = re.compile(pattern)

    def check(self, text):
        return self.pattern.fullmatch(text) is not None

    def __repr__(self):
        return f"Re({self.pattern.pattern!r})"


def matches(expect, text):
    if expect is None:
        return True
    if isinstance(expect, str):
        return expect == text
    return expect.check(text)


def unexpected(word, labels):
    return f"Unexpected token: '{word}'\nAvailable options: {labels}\n"


def more(labels):
    return f"More arguments expected.\nPossible follow-ups: {labels}\n"


def argp(name, message):
    return (f"{name}: {message}\n"
            f"Try `{name} --help' or `{name} --usage' for more information.\n")


def kernel(status, message):
    return f"Error: The kernel module returned error {status}: {message}\n"


ONE_PROTO = "Error: Only one protocol is allowed per request.\n"
NOT_UINT = "Error: '{}' is not an unsigned integer. (error code 1)\n"

# (command line, exit status, stdout, stderr)
CASES = [
    # ---- ARGP1 (spec §1.1)
    ("", 0, HELP, ""),
    ("--help", 0, HELP, ""),
    ("-?", 0, HELP, ""),
    ("--he", 0, HELP, ""),
    ("-V", 0, "4.1.9.0\n", ""),
    ("--version", 0, "4.1.9.0\n", ""),
    ("--vers", 0, "4.1.9.0\n", ""),
    ("--usage", 0, usage_text(), ""),
    ("--us", 0, usage_text(), ""),
    ("-h", 0, HELP, "jool: invalid option -- 'h'\n"),
    ("--pool4 --display", 0, HELP, "jool: unrecognized option '--pool4'\n"),
    ("-i", 0, HELP, "jool: option requires an argument -- 'i'\n"),
    ("--instance", 0, HELP, "jool: option '--instance' requires an argument\n"),
    ("--help=x", 0, HELP, "jool: option '--help' doesn't allow an argument\n"),
    ("-V instance display", 0, "4.1.9.0\n", ""),
    ("--help instance add", 0, HELP, ""),
    ("-i x", 234, "", more(ROOT_LABELS)),
    ("--instance=x", 234, "", more(ROOT_LABELS)),
    ("-ix", 234, "", more(ROOT_LABELS)),
    ("--inst x", 234, "", more(ROOT_LABELS)),
    ("-i a -i b instance status", 0, "Dead\n(Instance 'b' does not exist.)\n", ""),
    ("-i '' instance status", 0, "Running\n", ""),
    ("-i default instance status", 0, "Running\n", ""),
    ("-i toolongname12345 instance status", 234, "", In("15 characters max.")),
    ("-i 'caf\u00e9' stats display", 234, "", In("15 characters max.")),
    ("-i 'a\tb' stats display", 234, "", In("15 characters max.")),
    ("-i 123456789012345 instance status", 0, In("does not exist"), ""),
    ("-f /nonexistent/file.json instance status", 2, "",
     'Error: Could not open file "/nonexistent/file.json": No such file or directory\n'),
    ("-- instance status", 0, "Running\n", ""),
    # ---- keyword tree (§1.2)
    ("instance", 234, "", more("display add remove flush status ")),
    ("stats", 234, "", more("display ")),
    ("global", 234, "", more("display update ")),
    ("global update", 234, "", more(GLOBAL_KEYS)),
    ("g u", 234, "", more(GLOBAL_KEYS)),
    ("pool4", 234, "", more("display add remove flush ")),
    ("bib", 234, "", more("display add remove ")),
    ("session", 234, "", more("display ")),
    ("file", 234, "", more("handle ")),
    ("joold", 234, "", more("advertise ")),
    ("foo display", 234, "", unexpected("foo", ROOT_LABELS)),
    ("eamt display", 234, "", unexpected("eamt", ROOT_LABELS)),
    ("denylist4 display", 234, "", unexpected("denylist4", ROOT_LABELS)),
    ("blacklist4 flush", 234, "", unexpected("blacklist4", ROOT_LABELS)),
    ("address query 1.2.3.4", 234, "", unexpected("address", ROOT_LABELS)),
    ("INSTANCE display", 234, "", unexpected("INSTANCE", ROOT_LABELS)),
    ("autocomp 1", 234, "", unexpected("autocomp", ROOT_LABELS)),
    ("s d", 234, "", "Ambiguous token: 's'\nAvailable options: stats session \n"),
    ("instance x", 234, "", unexpected("x", "display add remove flush status ")),
    ("instance Display", 234, "", unexpected("Display", "display add remove flush status ")),
    ("session advertise", 234, "", unexpected("advertise", "display ")),
    ("global update trace 1", 234, "", unexpected("trace", GLOBAL_KEYS)),
    ("global update amend-udp-checksum-zero 1", 234, "",
     unexpected("amend-udp-checksum-zero", GLOBAL_KEYS)),
    ("global update eam-hairpin-mode simple", 234, "",
     unexpected("eam-hairpin-mode", GLOBAL_KEYS)),
    ("global update rfc6791v4-prefix 1.2.3.4", 234, "",
     unexpected("rfc6791v4-prefix", GLOBAL_KEYS)),
    ("global update --force ss-enabled true", 234, "", unexpected("--force", GLOBAL_KEYS)),
    ("g u ss-f 1", 234, "",
     "Ambiguous token: 'ss-f'\nAvailable options: ss-flush-asap ss-flush-deadline \n"),
    ("g u l 1", 234, "", "Ambiguous token: 'l'\nAvailable options: lowest-ipv6-mtu "
                         "logging-debug logging-bib logging-session \n"),
    ("g u manually false", 0, "", ""),
    ("g u tcp-e 2:00:00", 0, "", ""),
    ("global update tos 7", 0, "", ""),
    ("st d", 0, None, ""),
    ("se d --numeric", 0, None, ""),
    ("i d", 0, None, ""),
    ("p f", 0, "", ""),
    ("p d", 0, None, ""),
    ("b d --numeric", 0, None, ""),
    ("gl d", 0, None, ""),
    ("j a", 22, "", kernel(22, "Session synchronization is disabled on this instance.")),
    ("joold advertise whatever --bogus", 22, "", None),
    ("bib d x", 64, "", argp("d", "Too many arguments")),
    # ---- ARGP2 conventions (§1.3)
    ("instance display --foo", 64, "", argp("display", "unrecognized option '--foo'")),
    ("instance display --foo=bar", 64, "", argp("display", "unrecognized option '--foo=bar'")),
    ("instance display -x", 64, "", argp("display", "invalid option -- 'x'")),
    ("bib display --n", 64, "",
     argp("display", "option '--n' is ambiguous; possibilities: '--numeric' '--no-headers'")),
    ("pool4 display --u", 64, "",
     argp("display", "option '--u' is ambiguous; possibilities: '--udp' '--usage'")),
    ("instance add --p 64:ff9b::/96", 64, "",
     argp("add", "option '--p' is ambiguous; possibilities: '--pool6' '--program-name'")),
    ("pool4 display --csv=1", 64, "",
     argp("display", "option '--csv' doesn't allow an argument")),
    ("pool4 add --tcp 192.0.2.9 1-2 --mark", 64, "",
     argp("add", "option '--mark' requires an argument")),
    ("instance add -6", 64, "", argp("add", "option requires an argument -- '6'")),
    ("stats display x", 64, "", argp("display", "Too many arguments")),
    ("stats display -- x", 64, "", argp("display", "Too many arguments")),
    ("instance status x", 64, "", argp("status", "Too many arguments")),
    ("instance flush now", 64, "", argp("flush", "Too many arguments")),
    ("pool4 flush x", 64, "", argp("flush", "Too many arguments")),
    ("global display x", 64, "", argp("display", "Too many arguments")),
    ("bib add -1", 64, "", argp("add", "invalid option -- '1'")),
    ("pool4 add --tcp 192.0.2.9 -5", 64, "", argp("add", "invalid option -- '5'")),
    ("stats display --foo --help", 64, "", argp("display", "unrecognized option '--foo'")),
    ("stats display --program-name=zz --bar", 64, "",
     argp("zz", "unrecognized option '--bar'")),
    ("stats display --H", 0, None, ""),
    ("stats display --help", 0, In("Usage: display [OPTION...]", "--all", "--explain"), ""),
    ("stats display -?", 0, In("Usage: display [OPTION...]"), ""),
    ("stats display --he --foo", 0, In("Usage: display"), ""),
    ("stats display --usage", 0, In("Usage: display [-ae?V]", "[--no-headers]"), ""),
    ("stats display -V", 0, "4.1.9.0\n", ""),
    ("stats display --version", 0, "4.1.9.0\n", ""),
    ("instance status --help", 0, In("Usage: status [OPTION...]"), ""),
    ("pool4 add --help", 0, In("--max-iterations", "--mark", "-f, --force"), ""),
    ("p a --usage", 0, In("Usage: a "), ""),
    ("global update tos --help", 0, In("Usage: tos [OPTION...] <value>"), ""),
    ("global update tos --bogus", 64, "", argp("tos", "unrecognized option '--bogus'")),
    ("file handle --help", 0, In("Usage: handle"), ""),
    ("pool4 display --tcp --udp", 234, "", ONE_PROTO),
    ("pool4 display --tcp --tcp", 234, "", ONE_PROTO),
    ("pool4 display -tu", 234, "", ONE_PROTO),
    ("bib display -i --icmp", 234, "", ONE_PROTO),
    ("session display --udp -t", 234, "", ONE_PROTO),
    ("pool4 remove 192.0.2.1 --udp --icmp", 234, "", ONE_PROTO),
    ("bib add --tcp --udp 2001:db8::1#80 192.0.2.1#150", 234, "", ONE_PROTO),
    ("pool4 display --ud", 0, None, ""),
    ("bib display --nu", 0, "[Static TCP] 192.0.2.1#150 - 2001:db8::6#8080\n", ""),
    ("bib display --numeric --tcp", 0, "[Static TCP] 192.0.2.1#150 - 2001:db8::6#8080\n", ""),
    ("bib display --numeric --udp", 0, "", ""),
    ("bib display --numeric -u", 0, "", ""),
    # ---- values (§1.4) through global update
    ("global update tos 255", 0, "", ""),
    ("global update tos 256", 234, "", "Error: '256' is out of bounds (0-255).\n"),
    ("global update tos abc", 1, "", NOT_UINT.format("abc")),
    ("global update tos -- -1", 1, "", NOT_UINT.format("-1")),
    ("global update tos 12abc", 0, "", ""),
    ("global update tos", 234, "", "Error: Missing value of key tos.\n"),
    ("global update tos --force", 234, "", "Error: Missing value of key tos.\n"),
    ("global update tos 1 2", 0, "", ""),
    ("global update lowest-ipv6-mtu 1279", 22, "", In("Error: The kernel module returned "
                                                       "error 22: ")),
    ("global update lowest-ipv6-mtu 4294967296", 234, "",
     "Error: '4294967296' is out of bounds (0-4294967295).\n"),
    ("global update lowest-ipv6-mtu 99999999999999999999999", 34, "", In("Error: ")),
    ("global update manually-enabled maybe", 234, "",
     "Error: Cannot parse 'maybe' as a bool (true|false|1|0|yes|no|on|off).\n"),
    ("global update manually-enabled OFF", 0, "", ""),
    ("global update manually-enabled Yes", 0, "", ""),
    ("global update manually-enabled 0", 0, "", ""),
    ("global update udp-timeout 1:00", 22, "", In("error 22: ")),
    ("global update udp-timeout 10s", 234, "",
     "Error: '10s' does not seem to follow the '[HH:[MM:]]SS[.mmm]' format.\n"),
    ("global update udp-timeout 1.5", 234, "", In("Error: ")),
    ("global update udp-timeout 0:10:00", 0, "", ""),
    ("global update icmp-timeout 0", 0, "", ""),
    ("global update mtu-plateaus '6000, 5000'", 1, "", In("Error: ")),
    ("global update mtu-plateaus 1,,2", 0, "", ""),
    ("global update mtu-plateaus 0,0", 22, "", In("error 22: ")),
    ("global update pool6 null", 22, "", kernel(22, "pool6 is mandatory")),
    ("global update pool6 2001:db8::/96", 22, "",
     kernel(22, "can't change a NAT64 instance's pool6")),
    ("global update pool6 64:ff9b::/96", 0, "", ""),
    ("global update pool6 zzz", 234, "", In("Error: ")),
    ("global update f-args 16", 22, "", In("error 22: ")),
    ("global update f-args 256", 234, "", "Error: '256' is out of bounds (0-255).\n"),
    ("global update f-args 0b11", 0, "", ""),
    ("global update ss-flush-deadline 1:00", 0, "", ""),
    ("global update ss-enabled true --force", 0, "", ""),
    ("global update ss-enabled -f true", 0, "", ""),
    # ---- instance (§2.1)
    ("instance add --pool6 64:ff9b::/96", 17, "", In("error 17: ")),
    ("instance add --iptables --pool6 64:ff9b::/96 alpha", 0, "", ""),
    ("instance add --iptables -6 64:ff9b::/96 alpha", 0, "", ""),
    ("instance add --iptables -664:ff9b::/96 alpha", 0, "", ""),
    ("instance add --iptables --pool6=64:ff9b::/96 alpha", 0, "", ""),
    ("instance add --iptables --po 64:ff9b::/96 alpha", 0, "", ""),
    ("instance add --iptables alpha", 22, "", kernel(22, "pool6 is mandatory")),
    ("instance add --netfilter --pool6 64:ff9b::/96 alpha", 17, "", In("error 17: ")),
    ("instance add --pool6 64:ff9b::/96 alpha", 17, "", In("error 17: ")),
    ("instance add --iptables --netfilter --pool6 64:ff9b::/96 alpha", 234, "", In("Error: ")),
    ("instance add --iptables --pool6 64:ff9b::/95 alpha", 22, "", In("error 22: ")),
    ("instance add --iptables --pool6 64:ff9b::1/96 alpha", 22, "", In("error 22: ")),
    ("instance add --iptables --pool6 nonsense alpha", 234, "", In("Error: ")),
    ("-i alpha instance add --iptables --pool6 64:ff9b::/96 beta", 234, "",
     "Error: You entered two different instance names. Please delete one of them.\n"),
    ("-i alpha instance add --iptables --pool6 64:ff9b::/96 alpha", 0, "", ""),
    ("-i alpha instance add --iptables --pool6 64:ff9b::/96", 0, "", ""),
    ("instance add --iptables --pool6 64:ff9b::/96 a b", 0, "", ""),
    ("instance add --iptables --pool6 64:ff9b::/96 sixteen-chars-xx", 234, "",
     In("15 characters max.")),
    ("instance remove nothere", 3, "",
     kernel(3, "This namespace lacks an instance named 'nothere'.")),
    ("-i x instance remove y", 234, "",
     "Error: You entered two different instance names. Please delete one of them.\n"),
    ("instance remove --help", 0, In("[<instance name>]"), ""),
    ("instance status", 0, "Running\n", ""),
    ("-i nothere instance status", 0, "Dead\n(Instance 'nothere' does not exist.)\n", ""),
    ("-i x instance flush", 0, "",
     "Warning: instance flush ignores the instance name argument.\n"),
    # ---- stats (§2.2)
    ("stats display", 0, "JSTAT_RECEIVED6: 1520\nJSTAT_RECEIVED4: 1388\n"
                         "JSTAT_SUCCESS: 2890\nJSTAT_BIB_ENTRIES: 1\nJSTAT_SESSIONS: 3\n", ""),
    ("stats display --no-headers", 0, In("JSTAT_SUCCESS: 2890\n"), ""),
    ("stats display --csv", 0, "Stat,Value\nJSTAT_RECEIVED6,1520\nJSTAT_RECEIVED4,1388\n"
                               "JSTAT_SUCCESS,2890\nJSTAT_BIB_ENTRIES,1\nJSTAT_SESSIONS,3\n", ""),
    ("stats display --csv --no-headers", 0, Re(r"JSTAT_RECEIVED6,1520\n[\s\S]*"), ""),
    ("stats display --all", 0, Re(r"JSTAT_RECEIVED6: 1520\n(.*\n){67}JSTAT_UNKNOWN: 0\n"), ""),
    ("stats display -a --csv", 0, Re(r"Stat,Value\n(.*\n){68}JSTAT_UNKNOWN,0\n"), ""),
    ("stats display -e", 0, Re(r"JSTAT_RECEIVED6: 1520\n[^\n]+\n\n(JSTAT_\w+: \d+\n[^\n]+\n\n){4}"), ""),
    ("stats display -e --csv", 0, Re(r'Stat,Value,Explanation\nJSTAT_RECEIVED6,1520,"[^"]+"\n'
                                     r'(JSTAT_\w+,\d+,"[^"]+"\n){4}'), ""),
    ("-i nothere stats display", 3, "",
     kernel(3, "This namespace lacks an instance named 'nothere'.")),
    # ---- global display (§2.3)
    ("global display", 0, In("  manually-enabled: true\n  pool6: 64:ff9b::/96\n",
                             "  tcp-est-timeout: 2:00:00 (HH:MM:SS)\n"), ""),
    ("global display --csv", 0, In("Field,Value\nmanually-enabled,TRUE\n", "f-args,11\n"), ""),
    ("global display --csv --no-headers", 0, Re(r"manually-enabled,TRUE\n[\s\S]*"), ""),
    ("-i nothere global display", 3, "", In("lacks an instance named 'nothere'")),
    # ---- pool4 (§2.4)
    ("pool4 add --tcp 192.0.2.9 100-200", 0, "", ""),
    ("pool4 add 192.0.2.9 100-200 -t", 0, "", ""),
    ("pool4 add --udp 100-200 192.0.2.9", 0, "", ""),
    ("pool4 add --tcp -- 192.0.2.9 1-2", 0, "", ""),
    ("pool4 add 192.0.2.9 100-200", 234, "",
     "The command is missing a protocol (--tcp, --udp or --icmp).\n"),
    ("pool4 add --tcp 100-200", 234, "", "The command is missing an IPv4 prefix or address.\n"),
    ("pool4 add --icmp 192.0.2.9", 234, "",
     "The command is missing a port (or ICMP id) range.\n"),
    ("pool4 add", 234, "", "The command is missing an IPv4 prefix or address, a port (or "
                           "ICMP id) range and a protocol (--tcp, --udp or --icmp).\n"),
    ("pool4 add 192.0.2.9", 234, "", "The command is missing a port (or ICMP id) range and "
                                     "a protocol (--tcp, --udp or --icmp).\n"),
    ("pool4 add --tcp 192.0.2.0/23 1-2", 249, "", Re(r"Error: [^\n]+\nError: [^\n]*--force"
                                                     r"[^\n]*\n")),
    ("pool4 add --tcp 192.0.0.0/8 1-2", 249, "", None),
    ("pool4 add --tcp 192.0.2.0/23 1-2 --force", 0, "", ""),
    ("pool4 add --tcp 192.0.2.0/23 1-2 -f", 0, "", ""),
    ("pool4 add --tcp 192.0.2.0/24 1-2", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9 tcp", 1, "", NOT_UINT.format("tcp")),
    ("pool4 add --tcp 192.0.2.9 1000-", 1, "", In("is not an unsigned integer")),
    ("pool4 add --tcp 192.0.2.9 70000", 234, "",
     "Error: '70000' is out of bounds (0-65535).\n"),
    ("pool4 add --tcp 192.0.2.9/33 1-2", 234, "", In("Error: ")),
    ("pool4 add --tcp 192.0.2.256 1-2", 234, "", In("Error: ")),
    ("pool4 add --tcp 192.0.2 1-2", 234, "", In("Error: ")),
    ("pool4 add --tcp 192.0.2.9/ 1-2", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9/30 1-2", 22, "", In("error 22: ")),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-iterations infinity", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-iterations auto", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-iterations 5", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-iterations 0", 22, "", In("error 22: ")),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-iterations Infinity", 1, "",
     NOT_UINT.format("Infinity")),
    ("pool4 add --tcp 192.0.2.9 1-2 --max-it=auto", 0, "", ""),
    ("pool4 add --tcp 192.0.2.9 1-2 --mark abc", 1, "", NOT_UINT.format("abc")),
    ("pool4 add --tcp 192.0.2.9 1-2 --mark=abc", 1, "", NOT_UINT.format("abc")),
    ("pool4 add --tcp 192.0.2.9 1-2 --mark 4294967296", 234, "",
     "Error: '4294967296' is out of bounds (0-4294967295).\n"),
    ("pool4 add --tcp 192.0.2.9 1-2 --mark 4294967295", 0, "", ""),
    ("-i nothere pool4 add --tcp 192.0.2.9 1-2", 3, "", In("lacks an instance")),
    ("pool4 remove", 234, "", "The command is missing an IPv4 prefix or address.\n"),
    ("pool4 remove 1-2", 234, "", "The command is missing an IPv4 prefix or address.\n"),
    ("pool4 remove 192.0.2.1", 0, "", ""),
    ("pool4 remove 192.0.2.77 --udp --mark 3 --quick", 0, "", ""),
    ("pool4 remove 192.0.2.1 1-2 -q", 0, "", ""),
    ("pool4 remove 192.0.2.1 x", 1, "", NOT_UINT.format("x")),
    ("pool4 flush", 0, "", ""),
    ("pool4 flush --quick", 0, "", ""),
    ("pool4 flush -q", 0, "", ""),
    # ---- bib (§2.5)
    ("bib add 2001:db8::1#80 192.0.2.1#151", 0, "", ""),
    ("bib add 192.0.2.1#151 2001:db8::1#80", 0, "", ""),
    ("bib add --tcp 2001:db8::6#8080 192.0.2.1#150", 0, "", ""),
    ("bib add 2001:db8::1#80", 234, "",
     "The command is missing an IPv4 transport address.\n"),
    ("bib add 192.0.2.1#151", 234, "",
     "The command is missing an IPv6 transport address.\n"),
    ("bib add", 234, "", "The command is missing an IPv6 transport address and an IPv4 "
                         "transport address.\n"),
    ("bib add foo", 64, "", argp("add", "Too many arguments")),
    ("bib add 2001:db8::1 192.0.2.1#151", 234, "", In("Error: ")),
    ("bib add 2001:db8::1#80 192.0.2.1", 234, "", In("Error: ")),
    ("bib add 2001:db8::1#x 192.0.2.1#151", 1, "", NOT_UINT.format("x")),
    ("bib add 2001:db8::1#80 192.0.2.1#70000", 234, "", In("out of bounds (0-65535)")),
    ("bib add 2001:db8::1#80 192.0.2.1#1#2", 22, "", In("does not belong to pool4")),
    ("bib add 2001:db8::1#80 198.51.100.1#150", 22, "", In("does not belong to pool4")),
    ("bib add --udp 2001:db8::1#80 192.0.2.1#150", 22, "", In("does not belong to pool4")),
    ("bib add 2001:db8::6#8080 192.0.2.1#160", 17, "",
     kernel(17, "Entry 192.0.2.1#160|2001:db8::6#8080 collides with "
                "192.0.2.1#150|2001:db8::6#8080.")),
    ("bib add 2001:db8::1#80 -u 192.0.2.1#150", 22, "", None),
    ("bib remove", 234, "", "The command is missing at least one transport address.\n"),
    ("bib remove --udp", 234, "", "The command is missing at least one transport address.\n"),
    ("bib remove 2001:db8::9#1", 3, "", kernel(3, "The entry wasn't in the database.")),
    ("bib remove 2001:db8::6#8080 192.0.2.1#151", 3, "", None),
    ("bib remove 2001:db8::6#8080", 0, "", ""),
    ("bib remove 192.0.2.1#150", 0, "", ""),
    ("bib remove 192.0.2.1#150 2001:db8::6#8080", 0, "", ""),
    ("bib remove foo", 64, "", argp("remove", "Too many arguments")),
    # ---- session (§2.6)
    ("session display --numeric --csv --no-headers", 0,
     "TCP,2001:db8::6,8080,64:ff9b::c633:6407,443,192.0.2.1,150,198.51.100.7,443,"
     "1:59:58.312,ESTABLISHED\n", ""),
    ("session display --numeric --udp --csv --no-headers", 0,
     "UDP,2001:db8::7,5000,64:ff9b::c633:6408,53,192.0.2.1,61000,198.51.100.8,53,"
     "0:05:00\n", ""),
    ("session display --numeric --icmp --csv", 0,
     "Protocol,IPv6 Remote Address,IPv6 Remote L4-ID,IPv6 Local Address,IPv6 Local L4-ID,"
     "IPv4 Local Address,IPv4 Local L4-ID,IPv4 Remote Address,IPv4 Remote L4-ID,"
     "Expires in,State\n"
     "ICMP,2001:db8::8,5831,64:ff9b::c000:208,5831,192.0.2.1,61500,192.0.2.8,61500,"
     "0:00:59.100\n", ""),
    ("-i nothere session display", 3, "", In("lacks an instance named 'nothere'")),
    # ---- file (§2.7)
    ("file handle", 234, "", "The command is missing a file name.\n"),
    ("file handle --force", 234, "", "The command is missing a file name.\n"),
    ("file handle /nonexistent/x.json", 2, "",
     'Error: Could not open file "/nonexistent/x.json": No such file or directory\n'),
]


def snapshot():
    shots = [run_jool(["global", "display", "--csv"]).out,
             run_jool(["instance", "status"]).out]
    for proto in ("--tcp", "--udp", "--icmp"):
        shots.append(run_jool(["pool4", "display", "--csv", proto]).out)
        shots.append(run_jool(["bib", "display", "--csv", "--numeric", proto]).out)
    return shots


@pytest.mark.parametrize("line,code,out,err", CASES, ids=[c[0] or "(empty)" for c in CASES])
def test_command_line(world, line, code, out, err):
    before = snapshot() if code else None
    mutations = len(world.mutations())
    result = run_jool(line)
    assert result.code == code, (result.out, result.err)
    assert matches(out, result.out), result.out
    assert matches(err, result.err), result.err
    if code:
        if code in CLIENT_SIDE:
            assert len(world.mutations()) == mutations, "a refused command reached the server"
        assert snapshot() == before, "a refused command changed the configuration"


def test_case_count():
    assert len(CASES) >= 150


# ---------------------------------------------------------------------------
# Requests as the translator receives them
# ---------------------------------------------------------------------------

def last_request(server):
    return server.requests[-1]


def test_pool4_add_request(world):
    r = run_jool("pool4 add --udp 20-10 192.0.2.9 --mark 12abc --max-iterations 5x")
    assert r.code == 0, r.err
    assert last_request(world) == {
        "op": "pool4.add", "instance": "default", "proto": "udp", "prefix": "192.0.2.9/32",
        "min": 10, "max": 20, "mark": 12, "max_iterations": 5, "force": False}


def test_pool4_add_defaults_and_port_quirks(world):
    for text, expect in (("10-20-30", (10, 20)), ("5x-9", (5, 5)), ("7", (7, 7)),
                         ("65535-0", (0, 65535))):
        r = run_jool(["pool4", "add", "--tcp", "192.0.2.9", text])
        assert r.code == 0, r.err
        req = last_request(world)
        assert (req["min"], req["max"]) == expect
        assert req["mark"] == 0 and req["max_iterations"] == "keep"


def test_pool4_add_max_iterations_forms(world):
    for text, expect in (("auto", "auto"), ("infinity", "infinity"), ("7", 7)):
        assert run_jool(["pool4", "add", "--icmp", "192.0.2.9", "1-2",
                         "--max-iterations", text]).code == 0
        assert last_request(world)["max_iterations"] == expect


def test_pool4_remove_defaults(world):
    assert run_jool("pool4 remove 192.0.2.1").code == 0
    req = last_request(world)
    assert req == {"op": "pool4.remove", "instance": "default", "proto": "tcp",
                   "prefix": "192.0.2.1/32", "min": 0, "max": 65535, "mark": 0,
                   "quick": False}


def test_instance_add_request(world):
    assert run_jool("instance add --iptables -6 64:ff9b::/96 alpha").code == 0
    assert last_request(world) == {"op": "instance.add", "instance": "alpha",
                                   "framework": "iptables", "pool6": "64:ff9b::/96"}


def test_instance_add_queue_extension(world):
    """--queue (ours): the first NFQUEUE number of an --iptables instance."""
    assert run_jool("instance add --iptables -6 64:ff9b::/96 --queue 100 alpha").code == 0
    assert last_request(world)["queue"] == 100
    r = run_jool("instance add -6 64:ff9b::/96 --queue 100 beta")
    assert r.code != 0 and "--iptables" in r.err
    r = run_jool("instance add --iptables -6 64:ff9b::/96 --queue 70000 gamma")
    assert r.code != 0
    # Abbreviations Jool accepts keep working: --n is still --netfilter.
    assert run_jool("instance add --n --ip -6 64:ff9b::/96 delta").code == 234


def test_instance_add_defaults_to_netfilter(fake):
    assert run_jool("instance add --pool6 64:ff9b::/96").code == 0
    assert last_request(fake)["framework"] == "netfilter"
    assert last_request(fake)["instance"] == "default"


def test_instance_add_empty_name_quirk(fake):
    assert run_jool(["-i", "", "instance", "add", "--pool6", "64:ff9b::/96"]).code == 0
    assert last_request(fake)["instance"] == ""


def test_instance_remove_last_positional_wins(world):
    run_jool("instance add --iptables --pool6 64:ff9b::/96 b")
    r = run_jool("instance remove a b")
    assert r.code == 0, r.err
    assert last_request(world) == {"op": "instance.remove", "instance": "b"}


def test_global_update_request_forms(world):
    cases = [("manually-enabled off", False), ("udp-timeout 1:00:00", "1:00:00"),
             ("mtu-plateaus 1500,1280", [1500, 1280]), ("tos 12abc", 12),
             ("pool6 64:ff9b::/96", "64:ff9b::/96"), ("tcp-trans-timeout 300.500", "0:05:00.500")]
    for text, value in cases:
        key = text.split()[0]
        r = run_jool(["global", "update"] + text.split())
        assert r.code == 0, r.err
        req = last_request(world)
        assert (req["op"], req["key"], req["value"], req["force"]) == (
            "global.update", key, value, False)
    assert run_jool("global update tos 1 --force").code == 0
    assert last_request(world)["force"] is True


def test_global_update_then_display(world):
    assert run_jool("global update udp-timeout 0:10:00").code == 0
    assert run_jool("global update mtu-plateaus 1,,2").code == 0
    out = run_jool("global display").out
    assert "  udp-timeout: 0:10:00 (HH:MM:SS)\n" in out
    assert "  mtu-plateaus: 2,1\n" in out
    csv = run_jool("global display --csv").out
    assert "udp-timeout,0:10:00\n" in csv and 'mtu-plateaus,"2,1"\n' in csv


def test_bib_requests(world):
    assert run_jool("bib add 192.0.2.1#151 2001:db8::1#80").code == 0
    assert last_request(world) == {"op": "bib.add", "instance": "default", "proto": "tcp",
                                   "addr6": "2001:db8::1", "port6": 80,
                                   "addr4": "192.0.2.1", "port4": 151}
    assert run_jool("bib remove 2001:DB8:0::1#80").code == 0
    assert last_request(world) == {"op": "bib.remove", "instance": "default", "proto": "tcp",
                                   "addr6": "2001:db8::1", "port6": 80}


def test_identical_bib_add_is_success(world):
    assert run_jool("bib add 2001:db8::6#8080 192.0.2.1#150").code == 0


def test_joold_advertise_after_enabling(world):
    assert run_jool("global update ss-enabled true").code == 0
    r = run_jool("joold advertise")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert last_request(world) == {"op": "joold.advertise", "instance": "default"}


# ---------------------------------------------------------------------------
# Printers (exact texts of spec/cli.md §2)
# ---------------------------------------------------------------------------

POOL4_BORDER = "+------------+-------+--------------------+-----------------+-------------+\n"
POOL4_HEADER = "|       Mark | Proto |     Max iterations |         Address |       Ports |\n"


def test_pool4_display_table(world):
    inst = world.instances["default"]
    inst.pool4 = [[2, "TCP", "192.0.2.1", 100, 200, None, True],
                  [1, "TCP", "192.0.2.1", 100, 200, 999, True],
                  [0, "TCP", "192.0.2.1", 1000, 3000, 1039, False],
                  [0, "TCP", "192.0.2.8", 1, 65535, 1039, False],
                  [0, "TCP", "192.0.2.9", 1, 65535, 1039, False]]
    r = run_jool("pool4 display")
    assert r.code == 0
    assert r.out == (
        POOL4_BORDER + POOL4_HEADER + POOL4_BORDER
        + "|          2 |   TCP |   Infinite (fixed) |       192.0.2.1 |   100-  200 |\n"
        + POOL4_BORDER
        + "|          1 |   TCP |        999 (fixed) |       192.0.2.1 |   100-  200 |\n"
        + POOL4_BORDER
        + "|          0 |   TCP |       1039 ( auto) |       192.0.2.1 |  1000- 3000 |\n"
        + "|            |       |                    |       192.0.2.8 |     1-65535 |\n"
        + "|            |       |                    |       192.0.2.9 |     1-65535 |\n"
        + POOL4_BORDER)
    r = run_jool("pool4 display --no-headers")
    assert r.out.startswith(POOL4_BORDER + "|          2 |")
    r = run_jool("pool4 display --csv")
    assert r.out == ("Mark,Protocol,Address,Min port,Max port,Iterations,Iterations fixed\n"
                     "2,TCP,192.0.2.1,100,200,infinite,1\n"
                     "1,TCP,192.0.2.1,100,200,999,1\n"
                     "0,TCP,192.0.2.1,1000,3000,1039,0\n"
                     "0,TCP,192.0.2.8,1,65535,1039,0\n"
                     "0,TCP,192.0.2.9,1,65535,1039,0\n")
    assert run_jool("pool4 display --csv --no-headers").out.startswith("2,TCP,")


def test_pool4_display_empty(world):
    assert run_jool("pool4 display --udp").out == POOL4_BORDER + POOL4_HEADER + POOL4_BORDER * 2
    assert run_jool("pool4 display --udp --no-headers").out == POOL4_BORDER * 2
    assert run_jool("pool4 display --udp --csv").out == (
        "Mark,Protocol,Address,Min port,Max port,Iterations,Iterations fixed\n")
    assert run_jool("pool4 display --udp --csv --no-headers").out == ""


def test_pool4_add_then_display(world):
    assert run_jool("pool4 add --udp 192.0.2.8/30 61001-65535 --mark 7").code == 0
    out = run_jool("pool4 display --udp --csv --no-headers").out
    assert out == "".join(f"7,UDP,192.0.2.{i},61001,65535,1024,0\n" for i in range(8, 12))


INSTANCE_BORDER = "+--------------------+-----------------+-----------+\n"
INSTANCE_HEADER = "|          Namespace |            Name | Framework |\n"


def write_registry(directory, netns, pid, instances):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{netns}.json"), "w") as f:
        json.dump({"pid": pid, "netns": netns, "instances": instances}, f)


def dead_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_instance_display(isolated):
    registry = isolated / "registry"
    write_registry(registry, 0x6b514d00, os.getpid(),
                   [{"name": "default", "framework": "netfilter"},
                    {"name": "alpha", "framework": "iptables"}])
    write_registry(registry, 0x9e3a1200, os.getpid(),
                   [{"name": "alpha", "framework": "netfilter"}])
    write_registry(registry, 0x12345678, dead_pid(),
                   [{"name": "ghost", "framework": "netfilter"}])
    r = run_jool("instance display")
    assert (r.code, r.err) == (0, "")
    assert r.out == (INSTANCE_BORDER + INSTANCE_HEADER + INSTANCE_BORDER
                     + "|           6b514d00 |         default | netfilter |\n"
                     + "|           6b514d00 |           alpha |  iptables |\n"
                     + "|           9e3a1200 |           alpha | netfilter |\n"
                     + INSTANCE_BORDER)
    r = run_jool("instance display --no-headers")
    assert r.out.startswith(INSTANCE_BORDER + "|           6b514d00 |")
    r = run_jool("instance display --csv")
    assert r.out == ("Namespace,Name,Framework\n6b514d00,default,netfilter\n"
                     "6b514d00,alpha,iptables\n9e3a1200,alpha,netfilter\n")
    r = run_jool("-i alpha instance display --csv --no-headers")
    assert r.err == "Warning: instance display ignores the instance name argument.\n"
    assert r.out.startswith("6b514d00,default,netfilter\n")


def test_instance_display_empty(isolated):
    r = run_jool("instance display")
    assert r.out == INSTANCE_BORDER + INSTANCE_HEADER + INSTANCE_BORDER * 2
    assert run_jool("instance display --no-headers").out == INSTANCE_BORDER * 2
    assert run_jool("instance display --csv").out == "Namespace,Name,Framework\n"


def test_bib_display_forms(world):
    world.instances["default"].bib["tcp"].append(["2001:db8::7", 40000, "192.0.2.1", 120,
                                                  False])
    r = run_jool("bib display --numeric")
    assert r.out == ("[Dynamic TCP] 192.0.2.1#120 - 2001:db8::7#40000\n"
                     "[Static TCP] 192.0.2.1#150 - 2001:db8::6#8080\n")
    r = run_jool("bib display --numeric --csv")
    assert r.out == ("Protocol,IPv6 Address,IPv6 L4-ID,IPv4 Address,IPv4 L4-ID,Static?\n"
                     "TCP,2001:db8::7,40000,192.0.2.1,120,0\n"
                     "TCP,2001:db8::6,8080,192.0.2.1,150,1\n")
    assert run_jool("bib display --numeric --csv --no-headers").out.startswith("TCP,")


def test_bib_display_resolves_names(world):
    world.instances["default"].bib["tcp"] = [["::1", 80, "192.0.2.1", 150, True]]
    host, serv = socket.getnameinfo(("::1", 80, 0, 0), 0)
    r = run_jool("bib display")
    assert r.out == f"[Static TCP] 192.0.2.1#150 - {host}#{serv}\n"
    assert run_jool("bib display --csv --no-headers").out == f"TCP,{host},{serv},192.0.2.1,150,1\n"


def test_session_display_text(world):
    r = run_jool("session display --numeric")
    assert r.out == ("---------------------------------\n"
                     "(ESTABLISHED) Expires in 1:59:58.312\n"
                     "Remote: 198.51.100.7#443\t2001:db8::6#8080\n"
                     "Local: 192.0.2.1#150\t64:ff9b::c633:6407#443\n"
                     "---------------------------------\n")
    r = run_jool("session display --numeric --icmp --no-headers")
    assert r.out == ("---------------------------------\n"
                     "Expires in 0:00:59.100\n"
                     "Remote: 192.0.2.8#61500\t2001:db8::8#5831\n"
                     "Local: 192.0.2.1#61500\t64:ff9b::c000:208#5831\n"
                     "---------------------------------\n")


def test_session_display_empty(world):
    world.instances["default"].sessions["udp"] = []
    assert run_jool("session display --udp").out == "-" * 33 + "\n"
    assert run_jool("session display --udp --no-headers").out == "-" * 33 + "\n"
    assert run_jool("session display --udp --csv --no-headers").out == ""


def test_session_states_and_expiry():
    assert printers.format_expiry(7198312) == "1:59:58.312"
    assert printers.format_expiry(90000000) == "25:00:00"
    assert printers.format_expiry(-5) == "0:00:00"
    assert printers.format_expiry(1000) == "0:00:01"
    row = {"src6": "::1", "sport6": 1, "dst6": "::2", "dport6": 2, "src4": "1.1.1.1",
           "sport4": 3, "dst4": "2.2.2.2", "dport4": 4, "state": "BOGUS", "expires_in_ms": 0}
    text = printers.session_table([row], "tcp", printers.Resolver(True, "tcp"))
    assert "(UNKNOWN) Expires in 0:00:00\n" in text


def test_resolver_failure_falls_back(monkeypatch):
    def broken(*args):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getnameinfo", broken)
    messages = []
    resolve = printers.Resolver(False, "tcp", messages.append)
    assert resolve("2001:db8::1", 80) == ("2001:db8::1", "80")
    assert messages == ["Error: getnameinfo failed: Name or service not known"]


def test_icmp_ids_stay_numeric():
    host, serv = printers.Resolver(False, "icmp")("127.0.0.1", 80)
    assert serv == "80"


# ---------------------------------------------------------------------------
# -f and file handle
# ---------------------------------------------------------------------------

def write(path, text):
    path.write_text(text)
    return str(path)


def test_dash_f_takes_the_instance_name(world, tmp_path):
    path = write(tmp_path / "c.json", '{"comment": 1, "INSTANCE": "fromfile", "x": []}')
    r = run_jool(["-f", path, "instance", "status"])
    assert (r.code, r.out) == (0, "Dead\n(Instance 'fromfile' does not exist.)\n")
    r = run_jool(["-i", "a", "-f", path, "instance", "status"])
    assert r.out.startswith("Dead\n(Instance 'fromfile'")
    r = run_jool(["-f", path, "-i", "default", "instance", "status"])
    assert r.out == "Running\n"


def test_dash_f_without_instance(world, tmp_path):
    path = write(tmp_path / "c.json", '{"framework": "netfilter"}')
    r = run_jool(["-f", path, "stats", "display"])
    assert r.code == 234 and r.err.startswith("Error: ")


def test_file_handle(world, tmp_path):
    path = write(tmp_path / "c.json", json.dumps({
        "instance": "edge", "framework": "iptables",
        "global": {"pool6": "64:ff9b::/96", "udp-timeout": "0:10:00"},
        "pool4": [{"protocol": "TCP", "prefix": "198.51.100.8/30",
                   "port range": "1024-65535"}]}))
    r = run_jool(["file", "handle", path])
    assert (r.code, r.out, r.err) == (0, "", "")
    req = last_request(world)
    assert req["op"] == "file.handle" and req["instance"] == "edge" and req["force"] is False
    assert req["config"]["framework"] == "iptables"
    assert req["config"]["pool4"][0]["prefix"] == "198.51.100.8/30"
    assert run_jool(["file", "handle", path, "--force"]).code == 0
    assert last_request(world)["force"] is True
    assert run_jool(["-i", "edge", "f", "h", path]).code == 0
    assert run_jool(["-i", "edge", "global", "display", "--csv"]).out.count(
        "udp-timeout,0:10:00") == 1


@pytest.mark.parametrize("text,code", [
    ('{"instance": "edge", "framework": "netfilter", "bogus": 1}', 234),
    ('{"instance": "edge", "framework": "netfilter", "instance": "x"}', 239),
    ('{"instance": "edge", "framework": "nft"}', 234),
    ('{"framework": "netfilter"}', 234),
    ('{"instance": "edge"', 234),
    ('{"instance": "edge", "framework": "netfilter", "eamt": []}', 234),
    ('{"instance": "sixteen-chars-xx", "framework": "netfilter"}', 234),
])
def test_file_handle_rejects(world, tmp_path, text, code):
    path = write(tmp_path / "c.json", text)
    before = snapshot()
    mutations = len(world.mutations())
    r = run_jool(["file", "handle", path])
    assert r.code == code, r.err
    assert r.err.startswith("Error: ")
    assert len(world.mutations()) == mutations and snapshot() == before


def test_file_handle_instance_mismatch(world, tmp_path):
    path = write(tmp_path / "c.json", '{"instance": "edge", "framework": "netfilter"}')
    r = run_jool(["-i", "other", "file", "handle", path])
    assert r.code == 234 and r.err.startswith("Error: ")
    assert not world.mutations()


# ---------------------------------------------------------------------------
# No control process in the namespace (docs/control-protocol.md)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "stats display", "global display", "global update tos 1", "pool4 display",
    "pool4 add --tcp 192.0.2.1 1-2", "pool4 flush", "bib display", "session display",
    "instance remove", "joold advertise", "-i x pool4 remove 192.0.2.1",
])
def test_without_control_process(isolated, line):
    r = run_jool(line)
    name = "x" if line.startswith("-i x") else "default"
    assert (r.code, r.out) == (3, "")
    assert r.err == kernel(3, f"This namespace lacks an instance named '{name}'.")


def test_without_control_process_status_and_flush(isolated):
    r = run_jool("-i zz instance status")
    assert (r.code, r.out, r.err) == (0, "Dead\n(Instance 'zz' does not exist.)\n", "")
    r = run_jool("instance flush")
    assert (r.code, r.out, r.err) == (0, "", "")


def test_client_errors_come_before_the_translator(isolated):
    assert run_jool("global update tos abc").code == 1
    assert run_jool("pool4 add --tcp 192.0.2.0/16 1-2").code == 249


def test_instance_add_cannot_start_control(isolated):
    r = run_jool("instance add --pool6 64:ff9b::/96")
    assert r.code == 253 and r.err.startswith("Error: ")


def test_instance_add_starts_control(isolated, monkeypatch, tmp_path):
    """instance add launches $JOOL_CONTROL_COMMAND and retries until it answers."""
    name = f"jool-test/spawn-{os.getpid()}"
    monkeypatch.setenv("JOOL_CONTROL_SOCKET", name)
    script = tmp_path / "server.py"
    here = os.path.dirname(__file__)
    root = os.path.dirname(os.path.dirname(here))
    script.write_text(
        "import sys, time\n"
        f"sys.path[:0] = [{here!r}, {root!r}]\n"
        "time.sleep(0.3)\n"
        "from fakecontrol import FakeControl\n"
        f"server = FakeControl({name!r})\n"
        "deadline = time.time() + 10\n"
        "while time.time() < deadline and not any(\n"
        "        r['op'] == 'instance.remove' for r in server.requests):\n"
        "    time.sleep(0.05)\n")
    import sys
    monkeypatch.setenv("JOOL_CONTROL_COMMAND", f"{sys.executable} {script}")
    r = run_jool("instance add --pool6 64:ff9b::/96")
    assert (r.code, r.err) == (0, "")
    assert run_jool("instance status").out == "Running\n"
    assert run_jool("instance remove").code == 0


def test_unreachable_control_process(isolated, monkeypatch):
    """A listener that accepts and closes at once: the exchange fails → 253."""
    name = f"jool-test/rude-{os.getpid()}"
    monkeypatch.setenv("JOOL_CONTROL_SOCKET", name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + name)
    sock.listen(4)
    import threading

    def rude():
        for _ in range(2):
            conn, _ = sock.accept()
            conn.close()
    thread = threading.Thread(target=rude, daemon=True)
    thread.start()
    try:
        r = run_jool("stats display")
        assert r.code == 253 and r.err.startswith("Error: ")
        r = run_jool("instance status")
        assert r.code == 253 and r.out == "Dead\n"
    finally:
        thread.join(5)
        sock.close()


# ---------------------------------------------------------------------------
# autocomplete (bash completion helper)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("line,out", [
    ("autocomplete 1", ROOT_LABELS),
    ("autocomplete 1 p", "pool4 "),
    ("autocomplete 2 pool4", "display add remove flush "),
    ("autocomplete 2 pool4 a", "add "),
    ("autocomplete 3 global update ss-f", "ss-flush-asap ss-flush-deadline "),
    ("autocomplete 3 bib display --", "--tcp --udp --icmp --numeric --csv --no-headers "
                                      "--help --usage --version"),
    ("autocomplete 4 global update manually-enabled", "true false"),
    ("autocomplete 9 pool4", ""),
    ("autocomplete", ""),
])
def test_autocomplete(isolated, line, out):
    r = run_jool(line)
    assert (r.code, r.out, r.err) == (0, out, "")
