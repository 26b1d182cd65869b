"""The configuration block an instance publishes to its workers (DESIGN.md).

A small shared-memory segment beside the instance's tables:

    offset 0   u64 generation   odd while the control process rewrites the block
    offset 8   u32 length
    offset 16  JSON document (translator options and pool4 entries)

The control process is the only writer. A worker compares the generation with the
one it last applied, between batches; when it changed it re-reads the document,
retrying until it sees the same even generation before and after (a seqlock), so
it never applies half a configuration. Configuration changes are rare; a worker
pays one 8-byte read per batch.
"""

import json
import struct

from jool.control import shm

HEADER = struct.Struct("<QI")
DEFAULT_SIZE = 4 * 1024 * 1024
# The generation a block gets when its instance goes away: workers that see it
# stop, whoever started them (they outlive a control process that dies, so that
# forwarding goes on until another one takes them over).
RETIRED = (1 << 64) - 2


class ConfigBlock:
    def __init__(self, name, mm, owner):
        self.name = name
        self._mm = mm
        self.owner = owner

    @classmethod
    def create(cls, name, size=DEFAULT_SIZE):
        return cls(name, shm.create(name, size), True)

    @classmethod
    def attach(cls, name):
        return cls(name, shm.attach(name), False)

    @property
    def generation(self):
        return HEADER.unpack_from(self._mm, 0)[0]

    def publish(self, document):
        """Writes a new configuration; returns its generation."""
        data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        if HEADER.size + len(data) > len(self._mm):
            raise ValueError("the configuration does not fit its block")
        generation = self.generation
        odd = generation + 1 if generation % 2 == 0 else generation + 2
        struct.pack_into("<Q", self._mm, 0, odd)            # readers: being rewritten
        self._mm[HEADER.size:HEADER.size + len(data)] = data
        struct.pack_into("<I", self._mm, 8, len(data))
        struct.pack_into("<Q", self._mm, 0, odd + 1)
        return odd + 1

    def retire(self):
        struct.pack_into("<Q", self._mm, 0, RETIRED)

    @property
    def retired(self):
        return self.generation == RETIRED

    def read(self, attempts=1000):
        """(generation, document) of a consistent snapshot, or (0, None) if the
        block was never published."""
        for _ in range(attempts):
            before, length = HEADER.unpack_from(self._mm, 0)
            if before == 0:
                return 0, None
            if before % 2 or before == RETIRED:
                continue
            data = bytes(self._mm[HEADER.size:HEADER.size + length])
            if HEADER.unpack_from(self._mm, 0)[0] == before:
                return before, json.loads(data)
        raise TimeoutError("the configuration block kept changing")

    def close(self):
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def unlink(self):
        shm.unlink(self.name)


def build_translator(document, tables, **overrides):
    """A worker's Translator from a published document, on the shared tables;
    overrides replace options (MTUs, addresses, the counters row)."""
    from jool._fast.pipeline import Translator

    translator = Translator(tables=tables, **dict(document["translator"], **overrides))
    translator.set_pool4(pool4_from_document(document))
    return translator


def pool4_from_document(document):
    from jool.config.pool4 import Pool4

    pool4 = Pool4()
    for pset in document["pool4"]:
        for addr, lo, hi in pset["entries"]:
            pool4.add(pset["proto"], addr, lo, hi, pset["mark"], pset["max_iterations"],
                      set_iterations=True)
    return pool4
