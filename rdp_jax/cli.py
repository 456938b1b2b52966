"""The `rdp-jax` command line."""

import argparse
import os
import sys
from collections.abc import Sequence

import rdp_jax


def _verify(args: argparse.Namespace) -> int:
    import jax

    # Theory and reference checks are float64 claims.
    jax.config.update("jax_enable_x64", True)
    if "JAX_NUM_CPU_DEVICES" not in os.environ:
        # One CPU device per core: rcc deals its candidate search over the devices. Only
        # possible before jax starts its backends; in a process that already uses jax the
        # claims simply run on the devices it has.
        try:
            jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
        except RuntimeError:
            pass
    from rdp_jax import _report
    from rdp_jax.verify import registered_claims, run_claims

    claims = registered_claims(args.group)
    if args.match:
        claims = [c for c in claims if args.match.lower() in c.name.lower()]
    if args.list:
        for c in claims:
            print(f"[{c.group}] [{c.evidence}] {c.name}  ({c.source})")
        return 0
    if not claims:
        print("rdp-jax verify: no claim matches the selection.", file=sys.stderr)
        return 2
    results = []
    for i, result in enumerate(run_claims(claims), start=1):
        results.append(result)
        if not args.json:
            print(
                f"[{i}/{len(claims)}] {result.verdict:5} {result.name} ({result.seconds:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
    if args.json:
        print(_report.to_json(results))
    else:
        print(_report.format_table(results))
        print(_report.summary(results))
    return 1 if any(r.verdict in ("FAIL", "ERROR") for r in results) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdp-jax",
        description="Rate-distortion-perception theory and diffusion compression, checked.",
    )
    parser.add_argument("--version", action="version", version=f"rdp-jax {rdp_jax.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="measure every registered claim against its expected value and judge it",
        description="Runs the registered claims and prints measured vs expected with the "
        "tolerance and a verdict. Exits 1 if any claim fails or errors.",
    )
    verify.add_argument("--json", action="store_true", help="print the results as JSON")
    verify.add_argument("--list", action="store_true", help="list the claims without running")
    verify.add_argument(
        "--group", action="append", help="only claims of this group (repeatable), e.g. theory"
    )
    verify.add_argument("--match", help="only claims whose name contains this text")
    verify.set_defaults(run=_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
