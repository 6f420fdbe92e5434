"""The ``tc3d`` command line: one module per command group, each a thin shell that parses
flags, calls the library (:mod:`tc3d.api` and the modules that own the work) and prints."""

from tc3d.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
