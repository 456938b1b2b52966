"""`rdp-jax train`: train a shipped model's recipe from scratch and write its weights file."""

import argparse
import shlex
import sys
from pathlib import Path

from rdp_jax._commands._arguments import check_writable, seed

DATASETS = ("gmm2d", "digits", "patches")  # rdp_jax.models.RECIPES; a test checks they agree


def _run(args: argparse.Namespace) -> int:
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"`--steps` must be >= 1, got {args.steps}.")
    out = Path(args.out)
    check_writable(out, "--out")
    check_writable(args.figure, "--figure", figure=True)
    check_writable(args.checkpoint, "--checkpoint")
    if args.classifier:
        return _train_classifier(args, out)
    figure = Path(args.figure) if args.figure else out.with_suffix(".loss.png")
    from rdp_jax import datasets, models

    result, card = models.train_recipe(
        args.dataset,
        steps=args.steps,
        seed=args.seed,
        checkpoint=args.checkpoint,
        progress=not args.quiet,
    )
    command = ["rdp-jax", "train", "--dataset", args.dataset, "--steps", str(card["steps"])]
    if args.seed:
        command += ["--seed", str(args.seed)]
    card["command"] = shlex.join([*command, "--out", out.name])
    size = models.save(out, result.model, datasets.load(args.dataset, "train"), card)
    _loss_figure(result.losses, figure, f"{args.dataset}: {card['parameters']:,} parameters")
    print(
        f"wrote {out} ({size / 1024:.0f} KiB; {card['parameters']:,} parameters, "
        f"{card['steps']} steps in {card['seconds']:.0f} s, final loss {card['final_loss']:.4f}) "
        f"and {figure}",
        file=sys.stderr,
    )
    return 0


def _train_classifier(args: argparse.Namespace, out: Path) -> int:
    if args.dataset != "digits":
        raise ValueError(f"`--classifier` needs labels, which only digits has, not {args.dataset}.")
    import numpy as np

    from rdp_jax import datasets, models

    steps = args.steps or 2000
    x, labels = datasets.load("digits", "train", return_labels=True)
    classifier = models.train_classifier(x, labels, steps=steps, seed=args.seed)
    test, test_labels = datasets.load("digits", "test", return_labels=True)
    accuracy = float(np.mean(np.argmax(classifier(test), -1) == test_labels))
    command = f"rdp-jax train --dataset digits --classifier --steps {steps} --out {out.name}"
    models.save_classifier(out, classifier, {"command": command, "test_accuracy": accuracy})
    print(f"wrote {out} (test accuracy {100 * accuracy:.1f} %)", file=sys.stderr)
    return 0


def _loss_figure(losses, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 50)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(steps, losses, lw=0.5, alpha=0.35, label="per step")
    ax.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
    ax.set(xlabel="step", ylabel="loss  E‖F − target‖²", yscale="log", title=title)
    ax.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a shipped model's recipe (gmm2d, digits, patches) and write its weights",
        description="Trains the recipe of a shipped model from scratch on its dataset's "
        "training split (denoising score matching, EDM preconditioning, AdamW + EMA), writes "
        "the weights file (load it with rdp_jax.models.load) and a loss-curve figure.",
    )
    train.add_argument("--dataset", required=True, choices=DATASETS, help="which recipe")
    train.add_argument("--steps", type=int, help="optimiser steps (default: the recipe's)")
    train.add_argument("--out", required=True, help="the weights file to write (.msgpack)")
    train.add_argument("--seed", type=seed, default=0, help="initialisation and batch seed")
    train.add_argument("--checkpoint", help="resume from / save to this checkpoint file")
    train.add_argument("--figure", help="the loss-curve figure (default: OUT with .loss.png)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--classifier",
        action="store_true",
        help="train the dataset's feature classifier instead (digits), for Fréchet distances",
    )
    train.set_defaults(run=_run)
