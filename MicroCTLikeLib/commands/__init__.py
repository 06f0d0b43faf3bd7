"""Subcommands of the ``microctlike`` command line (see :mod:`MicroCTLikeLib.cli`)."""
