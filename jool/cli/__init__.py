"""Command-line front ends: `jool` (jool.cli.jool)."""
