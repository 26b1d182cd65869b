"""Counters of an instance in shared memory: one row of 128 counter slots per
process (row 0 the control process, row i+1 worker i), so that each process
counts without touching another's cache lines and `jool stats display` sums them.
Slots 1-69 are Jool's counters (spec/stats.md), 70-84 the dataplane's own
(counters.pxd JDP_*), 86-99 session synchronization's (stats.py JOOL_SS_*); the
rest are spare."""


import numpy as np

from jool.control import shm

from jool._fast.stats import (COUNTER_NAMES, DATAPLANE_COUNTER_NAMES, DATAPLANE_FIRST_SLOT,
                              LOG_COUNTER_NAMES, LOG_FIRST_SLOT, SYNC_COUNTER_NAMES,
                              SYNC_FIRST_SLOT)

SLOTS = 128                 # slot 0: the generation a worker applies (workers.py)
ROWS = 65                   # the control process and up to 64 workers
GAUGES = ("JSTAT_BIB_ENTRIES", "JSTAT_SESSIONS")


class CounterBlock:
    def __init__(self, name, mm, owner):
        self.name = name
        self._mm = mm
        self.owner = owner
        self.array = np.frombuffer(mm, dtype=np.uint64).reshape(ROWS, SLOTS)

    @classmethod
    def create(cls, name):
        size = ROWS * SLOTS * 8
        return cls(name, shm.create(name, size), True)

    @classmethod
    def attach(cls, name):
        return cls(name, shm.attach(name), False)

    def row(self, i):
        return self.array[i]

    def totals(self):
        """{name: value} summed over every process (gauges are the control
        process's, refreshed from the tables)."""
        summed = self.array.sum(axis=0)
        totals = {name: int(summed[i]) for i, name in enumerate(COUNTER_NAMES, 1)}
        for i, name in enumerate(COUNTER_NAMES, 1):
            if name in GAUGES:
                totals[name] = int(self.array[0][i])
        return totals

    def dataplane_totals(self, per_row=False):
        """{name: value} of the dataplane's own counters, summed (or one dict per
        worker row with per_row)."""
        def named(row):
            return {name: int(row[DATAPLANE_FIRST_SLOT + i])
                    for i, name in enumerate(DATAPLANE_COUNTER_NAMES)}
        if per_row:
            return [named(self.array[i]) for i in range(1, ROWS)]
        return named(self.array.sum(axis=0))

    def extension_totals(self):
        """{name: value} of our own counters (dataplane JOOL_DP_*, sync JOOL_SS_*,
        logging JOOL_LOG_*), summed over every process."""
        summed = self.array.sum(axis=0)
        totals = {}
        for first, names in ((DATAPLANE_FIRST_SLOT, DATAPLANE_COUNTER_NAMES),
                             (SYNC_FIRST_SLOT, SYNC_COUNTER_NAMES),
                             (LOG_FIRST_SLOT, LOG_COUNTER_NAMES)):
            totals.update((name, int(summed[first + i])) for i, name in enumerate(names))
        return totals

    def close(self):
        self.array = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass
            self._mm = None

    def unlink(self):
        shm.unlink(self.name)
