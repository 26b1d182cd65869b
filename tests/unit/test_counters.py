"""The counter IDs the kernels use are the ones spec/stats.md numbers."""

import re

from jool._fast.stats import COUNTER_IDS, COUNTER_NAMES
from jool._fast.pipeline import Translator


def test_69_counters_in_order():
    assert len(COUNTER_NAMES) == 69
    assert COUNTER_IDS["JSTAT_RECEIVED6"] == 1
    assert COUNTER_IDS["JSTAT_UNKNOWN"] == 69


def test_names_and_ids_match_the_spec(shared):
    table = (shared / "spec" / "stats.md").read_text()
    spec = {int(m.group(1)): m.group(2)
            for m in re.finditer(r"^\| (\d+) \| (JSTAT\w+) \|", table, re.M)}
    assert spec == {i: n for n, i in COUNTER_IDS.items()}


def test_translator_counts_every_slot():
    t = Translator()
    assert t.counters.shape == (70,)
    assert t.counter_dict() == {}
