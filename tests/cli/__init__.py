"""Tests of the command line: `python -m explain …` and explain.cli.main."""
