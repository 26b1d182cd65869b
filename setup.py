"""Builds the Cython kernels in jool/_fast.

JOOL_CHECKED=1 builds the test variant: every packet read or write through
jool/_fast/wire.pxd is verified against its buffer (a violation
is counted, never performed; tests assert the count stays zero).
"""
import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CHECKED = os.environ.get("JOOL_CHECKED", "0") == "1"
VARIANT = "checked" if CHECKED else "release"
STAMP = Path("jool/_fast/.build-variant")


class BuildVariant(build_ext):
    """Rebuilds every kernel when switching between the checked and release builds:
    the sources do not change, so setuptools would otherwise keep the other's .so."""

    def run(self):
        if not STAMP.exists() or STAMP.read_text() != VARIANT:
            self.force = True
        super().run()
        if self.inplace:
            STAMP.write_text(VARIANT)

extensions = [
    Extension(
        f"jool._fast.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include()],
        define_macros=[("JOOL_CHECKED", "1" if CHECKED else "0"),
                       ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=(["-O1", "-g"] if CHECKED else ["-O3"])
        + ["-fno-strict-aliasing", "-Wno-unused-function"],
    )
    for pyx in sorted(Path("jool/_fast").glob("*.pyx"))
]

setup(
    cmdclass={"build_ext": BuildVariant},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        force=not STAMP.exists() or STAMP.read_text() != VARIANT,
        compiler_directives={
            # Cython's own index checks stay on in every build: the kernels reach
            # packet memory through raw pointers (wire.pxd), so they cost the hot
            # path nothing, and Python-level code keeps negative-index semantics.
            "boundscheck": True,
            "wraparound": True,
            "initializedcheck": True,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
