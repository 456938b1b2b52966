"""`rdp-jax compress | decompress | inspect | sweep`: the codec on files, and its RDP sweep."""

import argparse
import contextlib
import json
import sys
import threading

from rdp_jax._commands._arguments import check_writable, load_array, seed
from rdp_jax._commands._model_spec import HELP as MODEL_HELP

DEFAULT_ITEMS = 1000  # `sweep --items`


def _vector(text: str, name: str):
    """A scalar, a comma-separated list, or a .npy file, as a float64 array."""
    import numpy as np

    if text.endswith(".npy"):
        return load_array(text, f"--{name}").astype(np.float64)
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} {text!r}: not a number, a comma list or a .npy file.") from None
    if not values:
        raise ValueError(f"--{name}: give a value.")
    return np.asarray(values[0] if len(values) == 1 else values)


@contextlib.contextmanager
def _working(description: str, measured: bool = False):
    """A bar on stderr for work that takes over a second (shown from 1 s on): the elapsed time,
    and with `measured` the fraction done and the time left; yields the `progress` callable
    that moves it (fractions in [0, 1])."""
    from tqdm import tqdm

    bar = tqdm(
        desc=description,
        total=1.0 if measured else None,
        bar_format=(
            "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"
            if measured
            else "{desc}: {elapsed}"
        ),
        file=sys.stderr,
        leave=False,
        delay=1.0,
        disable=None,
    )
    stop = threading.Event()

    def tick():
        if stop.wait(1.0):
            return
        while not stop.wait(0.25):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield lambda fraction: bar.update(fraction - bar.n)
    finally:
        stop.set()
        thread.join()
        bar.close()


def _setup():
    import jax

    jax.config.update("jax_enable_x64", True)  # Gaussian SPECs are float64


def _steps_note(grid) -> str:
    """ " (S steps)" for a progressive file's grid, else nothing."""
    if not grid:
        return ""
    return f" ({len(grid)} step{'s' * (len(grid) != 1)})"


def _compress(args: argparse.Namespace) -> int:
    _setup()
    import jax

    from rdp_jax import codec
    from rdp_jax._commands._model_spec import parse

    check_writable(args.output, "OUT", not_input=args.input)
    x = load_array(args.input, "IN")
    model = parse(args.model)
    sigma = _vector(args.sigma, "sigma")
    with _working(f"compressing {args.input}", measured=True) as progress:
        data, info = codec.compress(
            jax.random.key(args.seed),
            x,
            model,
            sigma,
            mode=args.mode,
            steps=args.steps,
            sigma_max=args.sigma_max,
            return_info=True,
            progress=progress,
        )
    with open(args.output, "wb") as f:
        f.write(data)
    meta = codec.inspect(data)
    line = (
        f"{args.output}: {len(data)} bytes, {meta.items} item(s) × {meta.dims} dims, "
        f"{info.mode}{_steps_note(meta.grid)}: "
        f"{info.bits_per_item:.2f} bits/item ({info.bits_per_dim:.4f} bits/dim)"
    )
    if info.information_bits is not None:
        ratio = info.bits_per_item / info.information_bits
        line += f" against I(X; X_σ) = {info.information_bits:.2f} bits/item ({ratio:.3f}×)"
    print(line + f"; header {info.container_bits + info.rcc_header_bits} bits")
    return 0


def _decompress(args: argparse.Namespace) -> int:
    _setup()
    import numpy as np

    from rdp_jax import codec
    from rdp_jax._commands._model_spec import parse

    # np.save adds the suffix to a name without it (checked first: "dir/" is not "dir/.npy")
    check_writable(args.output, "RECON")
    output = args.output if args.output.endswith(".npy") else args.output + ".npy"
    check_writable(output, "RECON", not_input=args.input)
    with open(args.input, "rb") as f:
        data = f.read()
    model = parse(args.model)
    rho = _vector(args.rho, "rho")
    options = {"method": args.method, "num_steps": args.num_steps}
    with _working(f"decompressing {args.input}"):
        x_hat = np.asarray(codec.decompress(data, model, rho, **options))
    np.save(output, x_hat)
    print(f"{output}: {x_hat.shape} {x_hat.dtype} decoded at ρ = {args.rho}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rdp_jax import codec

    with open(args.input, "rb") as f:
        meta = codec.inspect(f.read())
    if args.json:
        print(json.dumps(meta._asdict()))
        return 0
    for name, value in meta._asdict().items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, tuple) and len(value) > 8:
            value = f"({', '.join(f'{v:.4g}' for v in value[:8])}, … {len(value)} values)"
        print(f"{name:>16}: {value}")
    return 0


def _files_bar(total: int):
    from tqdm import tqdm

    return tqdm(
        total=total, desc="coding files", file=sys.stderr, delay=1.0, leave=False, disable=None
    )


def _report(args: argparse.Namespace, rows, table) -> None:
    """The rows to `--out` (CSV or JSON) and as a table on stdout."""
    from rdp_jax import experiments

    print(table(rows))  # first: the results are on screen whatever happens to the file
    if args.out:
        experiments.write_sweep(rows, args.out)


def _sweep(args: argparse.Namespace) -> int:
    _setup()
    import jax

    from rdp_jax import experiments, scores
    from rdp_jax._commands._model_spec import parse

    check_writable(args.out, "--out")
    for path, flag in ((args.plot, "--plot"), (args.grid, "--grid")):
        check_writable(path, flag, figure=True)
    model = parse(args.model)
    sigmas, rhos = _vector(args.sigmas, "sigmas").ravel(), _vector(args.rhos, "rhos").ravel()
    if not isinstance(model, scores.Gaussian):
        return _traversal(args, model, sigmas, rhos)
    if args.grid:
        raise ValueError("--grid: image grids are of learned models (pretrained:NAME).")
    noise = ("isotropic", "matched") if args.noise == "both" else (args.noise,)
    files = args.blocks * len(sigmas) * (("isotropic" in noise) + ("matched" in noise) * len(rhos))
    with _files_bar(files) as bar:
        points = experiments.codec_sweep(
            jax.random.key(args.seed),
            model,
            sigmas,
            rhos,
            DEFAULT_ITEMS if args.items is None else args.items,
            noise=noise,
            blocks=args.blocks,
            dtype=args.dtype,
            progress=lambda done: bar.update(done - bar.n),
            decode_options={"method": args.method, "num_steps": args.num_steps},
        )
    _report(args, experiments.sweep_rows(points), experiments.sweep_table)
    if args.plot:
        experiments.plot_sweep(points, model, args.plot)
    return 0


def _traversal(args: argparse.Namespace, model, sigmas, rhos) -> int:
    """The sweep of a learned model on its dataset's test set (`experiments.traversal_sweep`)."""
    import jax
    import numpy as np

    from rdp_jax import datasets, experiments

    if not callable(getattr(model, "gaussian_fit", None)) or not hasattr(model, "name"):
        raise ValueError(f"--model {args.model!r}: a learned sweep needs a pretrained:NAME model.")
    if args.noise != "isotropic":
        raise ValueError("--noise: spectrum-matched noise is for Gaussian models.")
    if args.grid and len(model.event_shape) != 2:
        raise ValueError(
            f"--grid: image grids need items that are images; {args.model} has items of "
            f"shape {model.event_shape}."
        )
    test = np.asarray(datasets.load(model.name, "test"), args.dtype)
    items = min(DEFAULT_ITEMS, len(test)) if args.items is None else args.items
    if not 2 * args.blocks <= items <= len(test):
        raise ValueError(f"--items: between {2 * args.blocks} and the {len(test)} test items.")
    x = test[: items - items % args.blocks]
    modes = ("oneshot", "progressive") if args.mode == "both" else (args.mode,)
    with _files_bar(args.blocks * len(sigmas) * len(modes)) as bar:
        points = experiments.traversal_sweep(
            jax.random.key(args.seed),
            model,
            x,
            [float(s) for s in sigmas],
            [float(r) for r in rhos],
            modes=modes,
            blocks=args.blocks,
            steps=args.steps,
            reference=test,
            progress=lambda done: bar.update(done - bar.n),
            decode_options={"method": args.method, "num_steps": args.num_steps},
        )
    _report(args, experiments.traversal_rows(points), experiments.traversal_table)
    if args.plot:
        experiments.plot_traversal(points, model.name, args.plot)
    if args.grid:
        shown = [float(s) for s in sigmas[:: max(1, len(sigmas) - 1)]][:2]
        experiments.plot_reconstructions(points, x, shown, modes[0], args.grid)
    return 0


def _decode_arguments(parser) -> None:
    parser.add_argument(
        "--method", default="exp4", help="decoder integrator (rdp_jax.decode; default exp4)"
    )
    parser.add_argument(
        "--num-steps", type=int, default=20, help="decoder evaluations (default 20)"
    )


def add(commands) -> None:
    compress = commands.add_parser(
        "compress",
        help="compress a .npy array of items to a self-contained .rdp file",
        description="Sends X_σ = X + σN for every item in one reverse-channel-coded message; "
        "prints the bits per item against the information rate. " + MODEL_HELP,
    )
    compress.add_argument("input", help="IN.npy: one item of the model's shape, or a batch")
    compress.add_argument("output", help="OUT.rdp")
    compress.add_argument("--model", required=True, help=MODEL_HELP)
    compress.add_argument(
        "--sigma", required=True, help="noise std: a number, a comma list per dimension, or .npy"
    )
    compress.add_argument(
        "--mode", choices=("oneshot", "progressive"), help="default: the cheaper for the model"
    )
    compress.add_argument("--seed", type=seed, default=0, help="the shared key's seed")
    compress.add_argument(
        "--steps",
        type=int,
        default=None,
        help="progressive grid steps (default: the count of fewest expected bits)",
    )
    compress.add_argument("--sigma-max", type=float, help="progressive grid top")
    compress.set_defaults(run=_compress)

    decompress = commands.add_parser(
        "decompress",
        help="decode an .rdp file at a chosen ρ into a .npy array",
        description="Rebuilds X_σ from the file and the model and runs the score-scaled "
        "PF-ODE at ρ (0: perfect realism, 1: MMSE for a Gaussian). " + MODEL_HELP,
    )
    decompress.add_argument("input", help="IN.rdp")
    decompress.add_argument("output", help="RECON.npy")
    decompress.add_argument("--model", required=True, help=MODEL_HELP)
    decompress.add_argument(
        "--rho", required=True, help="score scale in [0, 1]: a number, a comma list, or .npy"
    )
    _decode_arguments(decompress)
    decompress.set_defaults(run=_decompress)

    inspect = commands.add_parser(
        "inspect",
        help="print what an .rdp file holds and where its bits go",
        description="Reads a codec file's header without a model.",
    )
    inspect.add_argument("input", help="FILE.rdp")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(run=_inspect)

    sweep = commands.add_parser(
        "sweep",
        help="real-bit σ × ρ sweep: a Gaussian against R(D, P), or a learned model's traversal",
        description="Compresses n items once per σ, decompresses at every ρ, and reports bits "
        "(header included), D, P (± SE), I(X; X_σ) and R(D, P) at the measured point. With "
        "pretrained:NAME, the first n items of its dataset's test set, coded in one or both "
        "codec modes, each file decoded at every ρ with the learned score and with the "
        "Gaussian fit, beside the Tweedie denoiser and a posterior sample from the same X_σ; "
        "perception is sliced W2² to the whole test set. " + MODEL_HELP,
    )
    sweep.add_argument("--model", required=True, help=MODEL_HELP)
    sweep.add_argument("--sigmas", default="0.5,1,2", help="comma list (default 0.5,1,2)")
    sweep.add_argument("--rhos", default="0,0.5,1", help="comma list (default 0,0.5,1)")
    sweep.add_argument(
        "--items",
        type=int,
        help=f"items per σ (default {DEFAULT_ITEMS}, or a learned model's test set if smaller)",
    )
    sweep.add_argument("--blocks", type=int, default=4, help="files per σ, for the bits' SE")
    sweep.add_argument(
        "--noise",
        choices=("isotropic", "matched", "both"),
        default="isotropic",
        help="isotropic σ, spectrum-matched noise (maths §8), or both",
    )
    sweep.add_argument(
        "--mode",
        choices=("oneshot", "progressive", "both"),
        default="both",
        help="learned models: the codec modes (default both)",
    )
    sweep.add_argument(
        "--steps", type=int, default=8, help="learned models: progressive grid steps (default 8)"
    )
    sweep.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    sweep.add_argument("--seed", type=seed, default=0)
    _decode_arguments(sweep)
    sweep.add_argument("--out", help="results.csv or results.json")
    sweep.add_argument(
        "--plot", help="a figure: the measured points over the analytic curves, or RDP curves"
    )
    sweep.add_argument(
        "--grid", help="learned models: reconstructions across ρ at the first and last σ"
    )
    sweep.set_defaults(run=_sweep)
