"""The `rdp-jax` command line: a thin shell over `rdp_jax`, one verb per `rdp_jax._commands`."""

import argparse
import importlib
import sys
from collections.abc import Sequence

import rdp_jax

# The modules of `rdp_jax._commands`, in the order `--help` lists their verbs.
_COMMANDS = ("verify", "codec", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdp-jax",
        description="Rate-distortion-perception theory and diffusion compression, checked.",
    )
    parser.add_argument("--version", action="version", version=f"rdp-jax {rdp_jax.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"rdp_jax._commands.{name}").add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one verb and returns its exit status.

    Bad arguments exit 2 with one line on stderr, as argparse does for its own errors: a
    `ValueError` (bad values, a file that is not an rdp-jax file, a wrong model) or an `OSError`
    (a missing or unreadable file) raised by a verb is printed as `rdp-jax VERB: message`, its
    first line only, without a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        # The library names its function, which is often the verb: say it once.
        first_line = first_line.removeprefix(f"{args.command}: ")
        print(f"rdp-jax {args.command}: {first_line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
