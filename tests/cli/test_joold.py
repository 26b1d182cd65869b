"""joold's command line and configuration files (spec/config.md §5)."""

import json

import pytest

from jool.cli.joold import (JooldConfigError, load_modsocket, load_netsocket, load_shared_key,
                            main)


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


# ------------------------------------------------------------ our extension: the shared key

GROUP = {"multicast address": "233.252.0.1", "multicast port": "6464"}


def test_shared_key_file_relative_to_the_netsocket_file(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    key = tmp_path / "conf" / "sync.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    monkeypatch.chdir("/")
    net = load_netsocket(write(tmp_path / "conf", "n.json",
                               dict(GROUP, **{"x-shared-key-file": "sync.key"})))
    assert net["x-shared-key-file"] == str(key)
    assert load_shared_key(net) == b"0123456789abcdef0123456789abcdef"


def test_without_the_key_nothing_changes(tmp_path):
    assert load_shared_key(load_netsocket(write(tmp_path, "n.json", GROUP))) is None


@pytest.mark.parametrize("value", [7, "", None, ["k"]])
def test_shared_key_file_must_name_a_file(tmp_path, value):
    with pytest.raises(JooldConfigError):
        load_netsocket(write(tmp_path, "n.json", dict(GROUP, **{"x-shared-key-file": value})))


@pytest.mark.parametrize("content", [None, "short key\n"])
def test_missing_or_short_key_refused(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / "k").write_text(content)
    path = write(tmp_path, "n.json", dict(GROUP, **{"x-shared-key-file": "k"}))
    assert main([path]) == 1
    err = capsys.readouterr().err
    assert "x-shared-key-file" in err or "at least 16 bytes" in err
    assert "joold error: 1" in err


def test_key_readable_by_others_warned(tmp_path, capsys):
    key = tmp_path / "k"
    key.write_text("0123456789abcdef0123456789abcdef")
    key.chmod(0o644)
    net = load_netsocket(write(tmp_path, "n.json", dict(GROUP, **{"x-shared-key-file": "k"})))
    assert load_shared_key(net)
    assert "readable by others" in capsys.readouterr().err
