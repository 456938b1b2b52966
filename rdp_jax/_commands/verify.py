"""`rdp-jax verify`: run the registered claims and judge them."""

import argparse
import os
import sys

# Kept here rather than imported from the registry, so that `--help` loads no jax; a test checks
# that the two agree.
GROUPS = ("theory", "decoder", "rcc", "codec", "models")


def _run(args: argparse.Namespace) -> int:
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

    claims = registered_claims(args.group, full=args.full)
    if args.match:
        claims = [c for c in claims if args.match.lower() in c.name.lower()]
    if not claims:
        print("rdp-jax verify: no claim matches the selection.", file=sys.stderr)
        return 2
    if args.list:
        for c in claims:
            tier = " [full]" if c.full else ""
            print(f"[{c.group}] [{c.evidence}]{tier} {c.name}  ({c.source})")
        return 0
    results = []
    # One progress line per claim on stderr, in every mode, so that `--json | head` is not silent.
    for i, result in enumerate(run_claims(claims), start=1):
        results.append(result)
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


def add(commands) -> None:
    verify = commands.add_parser(
        "verify",
        help="measure every registered claim against its expected value and judge it",
        description="Runs the registered claims and prints measured vs expected with the "
        "tolerance and a verdict. Exits 1 if any claim fails or errors. The default run is "
        "the quick tier of every group; --full adds the long checks.",
    )
    verify.add_argument("--json", action="store_true", help="print the results as JSON")
    verify.add_argument("--list", action="store_true", help="list the claims without running")
    verify.add_argument(
        "--group",
        action="append",
        choices=GROUPS,
        metavar="GROUP",
        help=f"only claims of this group (repeatable): {', '.join(GROUPS)}",
    )
    verify.add_argument("--match", help="only claims whose name contains this text")
    verify.add_argument(
        "--full", action="store_true", help="also run the long claims (several minutes)"
    )
    verify.set_defaults(run=_run)
