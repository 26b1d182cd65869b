"""Named shared-memory files in /dev/shm, mapped read-write by every process of a
namespace (the instance's tables, configuration block and counters)."""

import mmap
import os

SHM_DIR = "/dev/shm"


def create(name, size):
    """A new zero-filled segment (fails if the name exists)."""
    fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def attach(name):
    """An existing segment, whole."""
    fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED,
                         mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def exists(name):
    return os.path.exists(os.path.join(SHM_DIR, name))


def unlink(name):
    try:
        os.unlink(os.path.join(SHM_DIR, name))
    except FileNotFoundError:
        pass
