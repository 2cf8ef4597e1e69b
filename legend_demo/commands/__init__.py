"""CLI subcommands, one module each (see legend_demo/cli.py)."""
