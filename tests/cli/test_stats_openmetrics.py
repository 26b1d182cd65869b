"""`jool stats display --openmetrics` (our extension) against the fake control
process: the control operation it sends and the text it prints as is."""

import pytest

from jool.control.metrics import metric_name

parser = pytest.importorskip("prometheus_client.openmetrics.parser")


def test_openmetrics_prints_what_the_control_process_renders(world, jool):
    r = jool("stats display --openmetrics")
    assert r.code == 0, r.err
    assert world.requests[-1] == {"op": "metrics.openmetrics", "instance": "default"}
    families = {f.name: f for f in parser.text_string_to_metric_families(r.out)}
    csv = jool("stats display --all --csv --no-headers").out
    for line in csv.splitlines():
        name, value = line.split(",")
        family = families[metric_name(name)]
        assert sum(s.value for s in family.samples) == int(value), name
    assert families["jool_received6"].samples[0].labels == {"instance": "default",
                                                            "worker": "control"}


def test_openmetrics_ignores_the_table_flags(world, jool):
    plain = jool("stats display --openmetrics").out
    assert jool("stats display --openmetrics --csv --all --explain").out == plain


def test_openmetrics_of_a_missing_instance_fails_as_stats_display_does(world, jool):
    r = jool("-i nothere stats display --openmetrics")
    assert r.code == 3 and r.out == ""
    assert r.err == jool("-i nothere stats display").err


def test_openmetrics_is_in_the_help(world, jool):
    assert "--openmetrics" in jool("stats display --help").out
