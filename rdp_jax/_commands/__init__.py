"""The verbs of the `rdp-jax` command, one module each.

Each module has `add(commands)`, which adds its sub-parser(s) to the `argparse` sub-parsers
`commands` and sets `run` to a function of the parsed arguments returning the exit status.
Modules import jax and the heavy parts of rdp-jax inside `run`, so `rdp-jax --help` is quick.
"""
