"""`rdp-jax compress | decompress | inspect | sweep` in a temporary directory, and model SPECs."""

import io
import json
import sys
import time

import numpy as np
import pytest

from rdp_jax import cli, codec, scores
from rdp_jax._commands import _model_spec, codec as codec_commands

SPEC = "gaussian:4,1,0.25"
FAST = ["--method", "exp2", "--num-steps", "8"]


def run(capsys, *argv) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("codec")
    x = np.random.default_rng(0).normal(size=(6, 3)) * np.array([2.0, 1.0, 0.5])
    np.save(root / "x.npy", x)
    (root / "empty.npy").write_bytes(b"")
    np.save(root / "s.npy", np.array(["a", "b"]))
    argv = ["compress", root / "x.npy", root / "x.rdp", "--model", SPEC, "--sigma", "1"]
    status = cli.main([str(a) for a in argv])
    assert status == 0
    return root, x


def test_the_compress_bar_shows_the_fraction_done_on_a_terminal(monkeypatch):
    """Shown from 1 s on, with the percentage done and the time left (a terminal only: tqdm
    stays silent when stderr is a file or a pipe, as in CI logs)."""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with codec_commands._working("compressing x.npy", measured=True) as progress:
        progress(0.25)
        time.sleep(1.1)
        progress(0.5)
    assert "compressing x.npy:  50%|" in err.getvalue().replace("\r", "\n")
    assert "25%" not in err.getvalue()  # before the first second: nothing drawn


def test_compress_inspect_decompress_round_trip(files, capsys):
    root, _ = files
    data = (root / "x.rdp").read_bytes()
    model = _model_spec.parse(SPEC)
    status, out, _ = run(capsys, "inspect", root / "x.rdp", "--json")
    assert status == 0
    meta = json.loads(out)
    assert meta["shape"] == [6, 3] and meta["total_bits"] == 8 * len(data)
    for rho in ("0", "1", "0,0.5,1"):
        status, out, _ = run(
            capsys,
            "decompress",
            root / "x.rdp",
            root / "r.npy",
            "--model",
            SPEC,
            "--rho",
            rho,
            *FAST,
        )
        assert status == 0, out
        rho_value = np.array([float(r) for r in rho.split(",")])
        expected = codec.decompress(data, model, rho_value, method="exp2", num_steps=8)
        np.testing.assert_array_equal(np.load(root / "r.npy"), expected)
    status, out, _ = run(capsys, "inspect", root / "x.rdp")
    assert status == 0 and "bits_per_dim" in out


def test_progressive_compress_reports_its_chosen_steps(files, capsys):
    root, _ = files
    argv = ["compress", root / "x.npy", root / "p.rdp", "--model", SPEC, "--sigma", "1"]
    status, out, err = run(capsys, *argv, "--mode", "progressive", "--steps", "8")
    assert status == 0 and "progressive (8 steps):" in out, err
    status, out, _ = run(capsys, *argv, "--mode", "progressive")  # the fewest expected bits
    steps = len(codec.inspect((root / "p.rdp").read_bytes()).grid)
    assert status == 0 and f"progressive ({steps} step{'s' * (steps != 1)}):" in out


def test_compress_reports_bits_against_the_information_rate(tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.array([1.0, -0.5, 0.2]))
    status, out, _ = run(
        capsys,
        "compress",
        tmp_path / "one.npy",
        tmp_path / "one.rdp",
        "--model",
        SPEC,
        "--sigma",
        "0.5,1,2",
    )
    assert status == 0
    info = codec.inspect((tmp_path / "one.rdp").read_bytes())
    assert info.shape == (3,) and info.sigma == (0.5, 1.0, 2.0)
    assert "bits/item" in out and "I(X; X_σ)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "decompress",
                "{root}/x.rdp",
                "{root}/r.npy",
                "--model",
                "gaussian:4,1,0.3",
                "--rho",
                "1",
            ],
            "not the model the file was coded against",
        ),
        (
            ["decompress", "{root}/x.npy", "{root}/r.npy", "--model", SPEC, "--rho", "1"],
            "not an rdp-jax codec file",
        ),
        (
            ["decompress", "{root}/x.rdp", "{root}/r.npy", "--model", SPEC, "--rho", "2"],
            "`rho` must lie in [0, 1]",
        ),
        (
            ["compress", "{root}/x.npy", "{root}/y.rdp", "--model", "gaussian:1,1", "--sigma", "1"],
            "`x` must be one item of shape (2,)",
        ),
        (
            ["compress", "{root}/x.npy", "{root}/y.rdp", "--model", SPEC, "--sigma", "a"],
            "--sigma 'a': not a number",
        ),
        (
            ["compress", "{root}/nothing.npy", "{root}/y.rdp", "--model", SPEC, "--sigma", "1"],
            "No such file",
        ),
        (["inspect", "{root}/x.npy"], "not an rdp-jax codec file"),
        (
            [
                "compress",
                "{root}/x.npy",
                "{root}/y.rdp",
                "--model",
                "pretrained:none",
                "--sigma",
                "1",
            ],
            "pretrained",
        ),
        (["sweep", "--model", "gaussian:1", "--items", "3"], "`num_items` must be a multiple"),
        (
            ["sweep", "--model", "gaussian:1", "--out", "{root}/missing/r.csv"],
            "--out '{root}/missing/r.csv': the directory",
        ),
        (
            ["compress", "{root}/x.npy", "{root}/missing/y.rdp", "--model", SPEC, "--sigma", "1"],
            "the directory",
        ),
        (
            ["decompress", "{root}/x.rdp", "{root}/missing/r", "--model", SPEC, "--rho", "1"],
            "RECON '{root}/missing/r': the directory",
        ),
        # A directory, not "{root}/.npy" written silently.
        (
            ["decompress", "{root}/x.rdp", "{root}/", "--model", SPEC, "--rho", "1"],
            "is a directory",
        ),
        (
            ["compress", "{root}/empty.npy", "{root}/y.rdp", "--model", SPEC, "--sigma", "1"],
            "IN '{root}/empty.npy': not a NumPy .npy array",
        ),
        (
            [
                "compress",
                "{root}/x.npy",
                "{root}/y.rdp",
                "--model",
                SPEC,
                "--sigma",
                "{root}/s.npy",
            ],
            "--sigma '{root}/s.npy': an array of numbers is needed",
        ),
        (
            [
                "compress",
                "{root}/x.npy",
                "{root}/y.rdp",
                "--model",
                "gaussian:{root}/empty.npy",
                "--sigma",
                "1",
            ],
            "model SPEC 'gaussian:{root}/empty.npy': '{root}/empty.npy': not a NumPy",
        ),
        (
            [
                "compress",
                "{root}/x.npy",
                "{root}/y.rdp",
                "--model",
                SPEC,
                "--sigma",
                "1",
                "--seed",
                "99999999999999999999999",
            ],
            "outside [0, 2^63)",
        ),
        (["sweep", "--model", "gaussian:1", "--grid", "{root}/g.png"], "--grid"),
        (["sweep", "--model", "pretrained:gmm2d", "--noise", "matched"], "--noise"),
        (["sweep", "--model", "pretrained:gmm2d", "--items", "3"], "--items"),
        # Checked before any work: an image grid of 2-D points, a figure format matplotlib
        # cannot write, an output that would overwrite the input.
        (["sweep", "--model", "pretrained:gmm2d", "--grid", "{root}/g.png"], "need items that"),
        (["sweep", "--model", "gaussian:1", "--plot", "{root}/p.txt"], "not a figure format"),
        (
            ["compress", "{root}/x.npy", "{root}/x.npy", "--model", SPEC, "--sigma", "1"],
            "is the input file",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(files, capsys, argv, message):
    root, _ = files
    argv = [a.format(root=root) for a in argv]
    try:
        status, _, err = run(capsys, *argv)
    except SystemExit as exit_:  # argparse's own errors (a bad --seed): usage, then the error
        status, err = exit_.code, capsys.readouterr().err.splitlines()[-1]
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert f"{argv[0]}: {argv[0]}:" not in err  # the verb is named once
    assert (
        len(lines) == 1
        and lines[0].startswith("rdp-jax ")
        and message.format(root=root) in lines[0]
    ), err


def _reject_constant(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_sweep_writes_csv_and_json(tmp_path, capsys):
    for name in ("r.csv", "r.json"):
        status, out, _ = run(
            capsys,
            "sweep",
            "--model",
            "gaussian:1",
            "--sigmas",
            "1",
            "--rhos",
            "0,1",
            "--items",
            "8",
            "--blocks",
            "1",
            "--out",
            tmp_path / name,
            *FAST,
        )
        assert status == 0 and "bits/dim" in out
    # Strict JSON: one file per σ leaves the bits' SE infinite, written "inf", not Infinity.
    rows = json.loads((tmp_path / "r.json").read_text(), parse_constant=_reject_constant)
    assert [r["rho"] for r in rows] == [0.0, 1.0]
    assert [r["bits_se"] for r in rows] == ["inf", "inf"]
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("noise,sigma,rho")


def test_model_specs(tmp_path):
    diag = _model_spec.parse("gaussian:4, 1,0.25")
    np.testing.assert_array_equal(diag.eigenvalues, [4.0, 1.0, 0.25])
    iso = _model_spec.parse("gaussian:dim=5,var=2,mean=1")
    assert iso.event_shape == (5,) and float(iso.mean[0]) == 1.0
    np.save(tmp_path / "v.npy", np.array([1.0, 2.0]))
    np.save(tmp_path / "c.npy", np.array([[2.0, 0.5], [0.5, 1.0]]))
    assert _model_spec.parse(f"gaussian:{tmp_path}/v.npy").eigenvectors is None
    full = _model_spec.parse(f"gaussian:{tmp_path}/c.npy")
    assert isinstance(full, scores.FullGaussian)
    np.testing.assert_array_equal(full.cov, [[2.0, 0.5], [0.5, 1.0]])
    for spec, match in (
        ("gaussian:", "give variances"),
        ("gaussian:dim=0,var=1", "dim must be an integer from 1 to"),
        ("gaussian:dim=inf", "dim must be an integer from 1 to"),
        ("gaussian:dim=nan", "dim must be an integer from 1 to"),
        ("gaussian:dim=1e12", "dim must be an integer from 1 to"),
        ("gaussian:dim=4,dim=5", "the field dim is given twice"),
        ("gaussian:dim=4,2", "mix of fields and bare numbers"),
        ("gaussian:dim=2,size=1", "unknown fields"),
        ("gaussian:var=1", "dim=D is required"),
        ("gaussian:1,x", "'x' is not a number"),
        ("gaussian:-1", "`var` must be finite and > 0"),
        ("laplace:1", "unknown kind 'laplace'"),
        ("pretrained:", "name the model"),
    ):
        with pytest.raises(ValueError, match=match):
            _model_spec.parse(spec)


def test_figure_names_without_a_suffix_are_accepted(tmp_path):
    from rdp_jax._commands._arguments import check_writable

    check_writable(tmp_path / "plot", "--plot", figure=True)  # matplotlib writes plot.png
    with pytest.raises(ValueError, match="not a figure format"):
        check_writable(tmp_path / "plot.txt", "--plot", figure=True)
