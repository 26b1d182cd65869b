"""joold's command line and configuration files (spec/config.md §5)."""

import json

import pytest

from jool.cli.joold import JooldConfigError, load_modsocket, load_netsocket, main


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def test_valid_files(tmp_path):
    net = load_netsocket(write(tmp_path, "n.json", {
        "multicast address": "ff08::db8:64:64", "multicast port": "6464",
        "in interface": "eth2", "out interface": "eth2", "reuseaddr": 1, "ttl": 3}))
    assert net["multicast port"] == 6464
    assert load_modsocket(write(tmp_path, "m.json", {"instance": "edge"})) == {"instance": "edge"}
    assert load_modsocket(None) == {"instance": "default"}
    assert load_modsocket(write(tmp_path, "m2.json", {})) == {"instance": "default"}


@pytest.mark.parametrize("doc", [
    {"multicast port": "6464"},                                   # no address
    {"multicast address": "ff08::db8:64:64"},                     # no port
    {"multicast address": "2001:db8::1", "multicast port": "6464"},   # not multicast
    {"multicast address": "ff08::db8:64:64", "multicast port": 6464},  # port not a string
    {"multicast address": "233.252.0.1", "multicast port": "6464", "ttl": "3"},
    {"multicast address": "233.252.0.1", "multicast port": "6464", "reuseaddr": True},
    "[1, 2]",
])
def test_invalid_netsocket(tmp_path, doc):
    with pytest.raises(JooldConfigError):
        load_netsocket(write(tmp_path, "n.json", doc))


def test_main_reports_and_fails(tmp_path, capsys):
    assert main([str(tmp_path / "missing.json")]) == 1
    assert "joold:" in capsys.readouterr().err
