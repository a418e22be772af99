"""The tmatch command-line interface (``tmatch.cli.main:main``)."""
