"""`python -m legend_demo <command>`: one module per command under legend_demo/commands/.

Each command module defines `register(subparsers)` which adds its parser and sets `func(args) -> int`.
Bad input exits with code 2 and one clear line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .core import logs
from .core.errors import EngineUnavailableError, GenerationError, ImageInputError

COMMAND_MODULES = (
    "legend_demo.commands.generate",
    "legend_demo.commands.ground",
    "legend_demo.commands.synth",
    "legend_demo.commands.train",
    "legend_demo.commands.profile",
    "legend_demo.commands.evaluate",
    "legend_demo.commands.study",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m legend_demo", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command not built yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        logs.configure()
        return int(args.func(args) or 0)
    except (ImageInputError, ValueError, FileNotFoundError, EngineUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GenerationError as exc:
        print(f"error: generation failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
