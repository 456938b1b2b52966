"""Mutation testing of `theory/`, `rdp_jax/rcc/`, `rdp_jax/_decoder/` and `rdp_jax/metrics/`.

A benchmark, not part of CI: it measures how many small, deliberate bugs ("mutants") the test
suite notices. Each mutant is one change in one source file (an operator, a comparison, a numeric
constant, ...). It is applied to a copy of the repository in a git worktree of a fixed commit, the
package's tests are run there with `python -m pytest -x -q -p no:cacheprovider` (CI=1, so the
derandomized hypothesis `ci` profile; `-m 'not slow'` from pyproject), and the file is restored.
The mutant is *killed* when the tests fail or error, *timed out* (counted as killed, reported
apart) when they run past `--timeout-factor` times the unmutated time, *survived* otherwise.

No dependency beyond the project's own: mutants are made with `ast` and applied as text edits of
the exact source span, so every other byte (and every line number) of the file is unchanged.

Usage (from the repository root, with the project's virtualenv):

    python benchmarks/mutation.py --list [--package theory]          # enumerate, run nothing
    python benchmarks/mutation.py --sample 40 --seed 0 --json out.json
    python benchmarks/mutation.py --package rcc --sample 20 --seed 0 --json out.json \\
        --resume out.json                                              # add to an earlier run
    python benchmarks/mutation.py --self-check                         # a broken mutant dies
    python benchmarks/mutation.py --report out.json                    # the table of a JSON

`--sample N` (or `--sample-for PKG=N`) is a uniform random sample without replacement, per
package: the first N of a permutation fixed by `--seed`, so a larger N extends a smaller one
(with `--resume`, mutants already in the JSON are not run again). The score is killed / sampled
with its binomial standard error sqrt(p(1 - p) / n). Results and classified survivors of the
baseline: benchmarks/README.md, "Mutation testing".

Speed-ups that do not change any verdict:

* Coverage first (`--no-coverage` to skip): each covering test file is run once, alone and
  unmutated, under a line tracer (a `sitecustomize` that also follows subprocesses). A mutant runs
  only the test files whose solo run executed its statement, the cheapest first; a mutant whose
  statement no test file executes cannot be killed and is recorded as survived ("not executed")
  without running. A test file that does not execute a line alone cannot depend on it in the full
  suite either (any cached result it reuses there it computes itself when alone).
* JAX's persistent compilation cache (`--no-jax-cache` to skip), keyed on the compiled program, so
  a mutant only recompiles what it changed.
* `PYTHONDONTWRITEBYTECODE=1` and no `__pycache__` in the worktree: a same-size mutant written in
  the same second would otherwise be shadowed by a stale .pyc.

The source of a mutated file is never edited in the caller's checkout: only in the worktree.
"""

from __future__ import annotations

import argparse
import ast
import io
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# package -> (source folders or files, covering test files): the test files that import the
# package (read from tests/). test_schedules.py and test_scores.py, which exercise the decoder's
# inputs, import neither rdp_jax._decoder nor anything that imports it (their coverage run
# executes none of its lines), so they are not run for it; test_experiments.py drives the
# decoder and is. test_rcc.py's one hand-off test through `rdp_jax.decode` is not counted for
# the decoder: a mutant only it could kill would be a gap in test_decoder.py.
PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "theory": (
        ["theory"],
        [
            "tests/test_scalar.py",
            "tests/test_kl.py",
            "tests/test_vector.py",
            "tests/test_awgn.py",
            "tests/test_framework.py",
            "tests/test_transforms.py",
            "tests/test_validation.py",
        ],
    ),
    "rcc": (
        ["rdp_jax/rcc"],
        ["tests/test_rcc.py", "tests/test_rcc_layout.py", "tests/test_rcc_portable.py"],
    ),
    "_decoder": (
        ["rdp_jax/_decoder"],
        [
            "tests/test_decoder.py",
            "tests/test_decoder_float32.py",
            "tests/test_decoder_mixture.py",
            "tests/test_experiments.py",
        ],
    ),
    "metrics": (
        ["rdp_jax/metrics"],
        [
            "tests/test_metrics.py",
            "tests/test_metrics_edges.py",
            "tests/test_stderr_calibration.py",
        ],
    ),
}

# --------------------------------------------------------------------------------------------
# Mutants
# --------------------------------------------------------------------------------------------

BINOP_SWAPS: dict[type, list[type]] = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div],
    ast.Div: [ast.Mult],
    ast.FloorDiv: [ast.Div],
    ast.Mod: [ast.FloorDiv],
    ast.Pow: [ast.Mult],
    ast.LShift: [ast.RShift],
    ast.RShift: [ast.LShift],
    ast.BitAnd: [ast.BitOr],
    ast.BitOr: [ast.BitAnd],
    ast.BitXor: [ast.BitOr],
}
OP_TEXT: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
CMP_SWAPS: dict[type, list[type]] = {
    ast.Lt: [ast.LtE, ast.Gt],
    ast.LtE: [ast.Lt],
    ast.Gt: [ast.GtE, ast.Lt],
    ast.GtE: [ast.Gt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
}
# Function names swapped where they are called (x.min() -> x.max(), jnp.floor -> jnp.ceil, ...).
CALL_SWAPS = {
    "min": "max",
    "max": "min",
    "minimum": "maximum",
    "maximum": "minimum",
    "nanmin": "nanmax",
    "nanmax": "nanmin",
    "argmin": "argmax",
    "argmax": "argmin",
    "floor": "ceil",
    "ceil": "floor",
    "any": "all",
    "all": "any",
}
# Calls whose arguments are messages, never mutated.
MESSAGE_CALLS = {"warn", "print", "debug", "info", "warning", "error", "exception", "critical"}


@dataclass
class Mutant:
    package: str
    file: str  # relative to the repository root
    line: int
    col: int
    operator: str  # e.g. "binop", "compare", "constant"
    original: str  # the changed line(s), stripped
    mutated: str
    edits: list[tuple[int, int, str]]  # (start, end, text) as character offsets into the file

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.operator}:{self.mutated}"

    def apply(self, source: str) -> str:
        out = source
        for start, end, text in sorted(self.edits, reverse=True):
            out = out[:start] + text + out[end:]
        return out


class _Source:
    """Offsets: AST columns are UTF-8 byte offsets; edits use character offsets."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))

    def offset(self, lineno: int, byte_col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:byte_col].decode())

    def tok_offset(self, pos: tuple[int, int]) -> int:  # tokenize: (row, character column)
        return self.starts[pos[0] - 1] + pos[1]

    def node_span(self, node: ast.AST) -> tuple[int, int]:
        return (
            self.offset(node.lineno, node.col_offset),
            self.offset(node.end_lineno, node.end_col_offset),
        )

    def tokens_between(self, start: int, end: int):
        for tok in self.tokens:
            s = self.tok_offset(tok.start)
            if s >= end:
                break
            if s >= start and tok.type in (tokenize.OP, tokenize.NAME):
                yield tok, s, self.tok_offset(tok.end)


def _skip_ranges(tree: ast.Module) -> set[int]:
    """ids of nodes (and their subtrees) never mutated."""
    skip: set[int] = set()

    def mark(node: ast.AST | None):
        if node is not None:
            for sub in ast.walk(node):
                skip.add(id(sub))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                mark(body[0])  # docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for dec in node.decorator_list:
                mark(dec)  # @jax.jit(static_argnames=...), @lru_cache(maxsize=...)
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    mark(arg.annotation)
        elif isinstance(node, ast.ClassDef):
            for dec in node.decorator_list:
                mark(dec)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert)):
            mark(node)  # messages; an assert's condition is an internal check, not behaviour
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name in MESSAGE_CALLS:
                mark(node)
            if name == "error_if" and len(node.args) >= 3:
                mark(node.args[2])  # equinox.error_if(x, cond, msg): the message
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "__all__" in names:
                mark(node)
        elif isinstance(node, ast.If):
            t = node.test
            if (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
                isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
            ):
                mark(node)
    return skip


def _perturb(value: int | float) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return {0: 1, 1: 0}.get(value, value + 1)
    if isinstance(value, float):
        if value == 0.0:
            return 1.0
        if value == 1.0:
            return 2.0
        return value * 2.0 if math.isfinite(value * 2.0) else value / 2.0
    return None


def _changed_lines(src: _Source, mutated: str, start: int) -> tuple[str, str]:
    row = src.text.count("\n", 0, start)
    old = src.lines[row].strip()
    new_lines = mutated.splitlines()
    new = new_lines[row].strip() if row < len(new_lines) else ""
    return old, new


def mutants_of_file(package: str, root: Path, rel: str) -> list[Mutant]:
    text = (root / rel).read_text()
    src = _Source(text)
    tree = ast.parse(text)
    skip = _skip_ranges(tree)
    no_mutate = {i + 1 for i, line in enumerate(src.lines) if "pragma: no mutate" in line}
    out: list[Mutant] = []
    seen: set[str] = set()
    original_dump = ast.dump(tree)

    def add(node: ast.AST, operator: str, edits: list[tuple[int, int, str]]):
        if node.lineno in no_mutate:
            return
        mutated = Mutant(package, rel, 0, 0, "", "", "", edits).apply(text)
        if mutated in seen:
            return
        try:
            new_tree = ast.parse(mutated)
            compile(new_tree, rel, "exec")
        except SyntaxError:
            return
        if ast.dump(new_tree) == original_dump:
            return
        seen.add(mutated)
        old, new = _changed_lines(src, mutated, min(e[0] for e in edits))
        out.append(Mutant(package, rel, node.lineno, node.col_offset, operator, old, new, edits))

    def op_token(start: int, end: int, texts: list[str]):
        """The first operator token spelled as `texts` (a multi-token op like 'is not')."""
        toks = list(src.tokens_between(start, end))
        for i in range(len(toks) - len(texts) + 1):
            if all(toks[i + k][0].string == texts[k] for k in range(len(texts))):
                return toks[i][1], toks[i + len(texts) - 1][2]
        return None

    def paren(node: ast.AST) -> str:
        s, e = src.node_span(node)
        return "(" + text[s:e] + ")"

    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            left = node.left if isinstance(node, ast.BinOp) else node.target
            right = node.right if isinstance(node, ast.BinOp) else node.value
            if type(node.op) not in BINOP_SWAPS:
                continue
            suffix = "=" if isinstance(node, ast.AugAssign) else ""
            pos = op_token(
                src.node_span(left)[1], src.node_span(right)[0], [OP_TEXT[type(node.op)] + suffix]
            )
            if pos is None:
                continue
            for new_op in BINOP_SWAPS[type(node.op)]:
                kind = "augassign" if suffix else "binop"
                add(node, kind, [(pos[0], pos[1], OP_TEXT[new_op] + suffix)])
        elif isinstance(node, ast.Compare):
            prev = node.left
            for op, comp in zip(node.ops, node.comparators, strict=True):
                pos = op_token(
                    src.node_span(prev)[1], src.node_span(comp)[0], OP_TEXT[type(op)].split()
                )
                if pos is not None:
                    for new_op in CMP_SWAPS.get(type(op), []):
                        add(node, "compare", [(pos[0], pos[1], OP_TEXT[new_op])])
                prev = comp
        elif isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            edits = []
            for a, b in itertools.pairwise(node.values):
                pos = op_token(src.node_span(a)[1], src.node_span(b)[0], [word])
                if pos is not None:
                    edits.append((pos[0], pos[1], "or" if word == "and" else "and"))
            if edits:
                add(node, "boolop", edits)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.USub, ast.Not, ast.Invert)):
                s, e = src.node_span(node)
                kind = {ast.USub: "unary-minus", ast.Not: "not", ast.Invert: "invert"}
                add(node, kind[type(node.op)], [(s, e, paren(node.operand))])
        elif isinstance(node, ast.Constant):
            v = node.value
            s, e = src.node_span(node)
            if isinstance(v, bool):
                add(node, "bool", [(s, e, repr(not v))])
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                new = _perturb(v)
                if new is not None:
                    add(node, "constant", [(s, e, repr(new))])
        elif isinstance(node, ast.Return):
            v = node.value
            if isinstance(v, ast.BinOp) and isinstance(v.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
                s, e = src.node_span(v)
                add(node, "return-term", [(s, e, paren(v.left))])
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in CALL_SWAPS:
                s, e = src.node_span(f)
                add(node, "call", [(e - len(f.attr), e, CALL_SWAPS[f.attr])])
            elif isinstance(f, ast.Name) and f.id in CALL_SWAPS:
                s, e = src.node_span(f)
                add(node, "call", [(s, e, CALL_SWAPS[f.id])])
    out.sort(key=lambda m: (m.line, m.col, m.operator, m.mutated))
    return out


def source_files(root: Path, package: str) -> list[str]:
    files: list[str] = []
    for entry in PACKAGES[package][0]:
        p = root / entry
        paths = [p] if p.is_file() else sorted(p.rglob("*.py"))
        files += [str(q.relative_to(root)) for q in paths]
    return files


def enumerate_mutants(root: Path, package: str) -> list[Mutant]:
    return [m for f in source_files(root, package) for m in mutants_of_file(package, root, f)]


def sample(mutants: list[Mutant], n: int | None, seed: int, package: str) -> list[Mutant]:
    order = list(range(len(mutants)))
    random.Random(f"{seed}:{package}").shuffle(order)
    return [mutants[i] for i in (order if n is None else order[:n])]


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

_SITECUSTOMIZE = r"""
import atexit, json, os, sys, threading
_dir = os.environ.get("MUTCOV_DIR")
if _dir:
    _pre = tuple(p for p in os.environ["MUTCOV_PREFIXES"].split(os.pathsep) if p)
    _hits = {}

    def _local(frame, event, arg):
        if event == "line":
            _hits[frame.f_code.co_filename].add(frame.f_lineno)
        return _local

    def _global(frame, event, arg):
        name = frame.f_code.co_filename
        if name.startswith(_pre):
            _hits.setdefault(name, set()).add(frame.f_lineno)
            return _local
        return None

    def _dump():
        sys.settrace(None)
        path = os.path.join(_dir, f"{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump({k: sorted(v) for k, v in _hits.items()}, f)

    atexit.register(_dump)
    sys.settrace(_global)
    threading.settrace(_global)
"""


@dataclass
class Runner:
    root: Path  # the worktree
    timeout_factor: float
    jax_cache: bool
    nice: int
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mutation_")))

    def env(self, coverage_dir: Path | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CI="1", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(self.root))
        env.pop("HYPOTHESIS_PROFILE", None)
        if self.jax_cache:
            env.update(
                JAX_COMPILATION_CACHE_DIR=str(self.scratch.parent / "mutation_jax_cache"),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
            )
        if coverage_dir is not None:
            site = self.scratch / "site"
            site.mkdir(exist_ok=True)
            (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
            env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(site)])
            env["MUTCOV_DIR"] = str(coverage_dir)
            env["MUTCOV_PREFIXES"] = os.pathsep.join(
                str(self.root / d) + os.sep for d in ("theory", "rdp_jax")
            )
        return env

    def pytest(self, tests: list[str], timeout: float | None, env: dict[str, str]):
        cmd = [
            "nice",
            "-n",
            str(self.nice),
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            *tests,
        ]
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        return proc.returncode, timed_out, time.monotonic() - t0, out or ""

    def coverage(self, package: str, cache: Path) -> dict:
        """Each test file alone, unmutated, traced: {test: {"seconds", "lines": {file: [..]}}}.

        Saved to `cache` after each file, so an interrupted pass resumes."""
        result = json.loads(cache.read_text()) if cache.exists() else {}
        for test in PACKAGES[package][1]:
            if test in result:
                continue
            cov_dir = self.scratch / f"cov_{package}_{Path(test).stem}"
            shutil.rmtree(cov_dir, ignore_errors=True)
            cov_dir.mkdir()
            rc, _, seconds, out = self.pytest([test], None, self.env(cov_dir))
            if rc != 0:
                raise SystemExit(f"unmutated {test} fails in {self.root}:\n{out[-3000:]}")
            lines: dict[str, set[int]] = {}
            for part in cov_dir.glob("*.json"):
                for name, hit in json.loads(part.read_text()).items():
                    rel = os.path.relpath(name, self.root)
                    lines.setdefault(rel, set()).update(hit)
            result[test] = {"seconds": seconds, "lines": {k: sorted(v) for k, v in lines.items()}}
            cache.write_text(json.dumps(result))
            used = any(r.startswith(tuple(PACKAGES[package][0])) for r in lines)
            print(
                f"  coverage {test}: {seconds:.0f} s, {out.strip().splitlines()[-1]}"
                + ("" if used else f" (executes nothing of {package}: never run for it)"),
                flush=True,
            )
        return result

    def run_mutant(self, m: Mutant, tests: list[str], base_seconds: float) -> dict:
        path = self.root / m.file
        original = path.read_text()
        timeout = max(60.0, self.timeout_factor * base_seconds)
        try:
            path.write_text(m.apply(original))
            rc, timed_out, seconds, out = self.pytest(tests, timeout, self.env())
        finally:
            path.write_text(original)
        if timed_out:
            status = "timeout"
        elif rc == 0:
            status = "survived"
        elif rc == 5:
            status = "error"  # nothing collected: counted as killed, but look at it
        else:
            status = "killed"
        failed = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        return {
            "status": status,
            "rc": rc,
            "seconds": round(seconds, 2),
            "killed_by": failed[0][:300] if failed else None,
            "tail": None if status == "survived" or failed else out.strip()[-400:],
        }


def covering(
    m: Mutant, ranges: dict[tuple[int, int], tuple[int, int]], cov: dict, ordered: list[str]
) -> list[str]:
    """Test files whose solo run executed the mutated statement, in the order of `ordered`."""
    lo, hi = ranges[(m.line, m.col)]
    return [
        t for t in ordered if not set(cov[t]["lines"].get(m.file, [])).isdisjoint(range(lo, hi + 1))
    ]


def statement_ranges(root: Path, rel: str) -> dict[tuple[int, int], tuple[int, int]]:
    """(line, col) of every node -> the lines that count as executing it: from the first line of
    the innermost statement around it to the node's last line (an `if` test does not count the
    body; a statement of its own counts all its lines)."""
    tree = ast.parse((root / rel).read_text())
    out: dict[tuple[int, int], tuple[int, int]] = {}

    def visit(node: ast.AST, stmt: ast.stmt | None):
        if isinstance(node, ast.stmt):
            stmt = node
        if hasattr(node, "lineno") and stmt is not None:
            compound = node is stmt and any(
                isinstance(getattr(node, f, None), list)
                and getattr(node, f)
                and isinstance(getattr(node, f)[0], ast.stmt)
                for f in ("body", "orelse")
            )
            lo, hi = stmt.lineno, (node.lineno if compound else node.end_lineno)
            key = (node.lineno, node.col_offset)
            old = out.get(key, (lo, hi))
            out[key] = (min(old[0], lo), max(old[1], hi))
        for child in ast.iter_child_nodes(node):
            visit(child, stmt)

    visit(tree, None)
    return out


def ensure_worktree(repo: Path, path: Path, commit: str) -> None:
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", str(path), commit], check=True
        )
    head = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    want = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    if head != want:
        raise SystemExit(f"{path} is at {head[:10]}, not {commit}; remove it or pass --worktree")
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if dirty:
        raise SystemExit(f"{path} has changes (an interrupted run?):\n{dirty}")
    for cache in list(path.rglob("__pycache__")):
        if "tests" not in cache.parts:
            shutil.rmtree(cache, ignore_errors=True)


def score(killed: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = killed / n
    return p, math.sqrt(p * (1 - p) / n)


def summarize(results: dict, packages: list[str]) -> str:
    rows = [
        "| package | mutants | sampled | killed | timed out | survived (not executed) "
        "| score ± SE | coverage pass + mutants |",
        "|---|---|---|---|---|---|---|---|",
    ]
    surv_lines = []
    for pkg in packages:
        r = results["packages"].get(pkg)
        if not r:
            continue
        runs = [results["mutants"][i] for i in r["sampled"] if i in results["mutants"]]
        n = len(runs)
        killed = sum(x["status"] in ("killed", "error") for x in runs)
        tout = sum(x["status"] == "timeout" for x in runs)
        surv = [x for x in runs if x["status"] == "survived"]
        noexec = sum(x.get("not_executed", False) for x in surv)
        p, se = score(killed + tout, n)
        secs = sum(x["seconds"] for x in runs)
        cov = r.get("coverage_seconds") or 0.0
        rows.append(
            f"| {pkg} | {r['total']} | {n} | {killed} | {tout} | {len(surv)} ({noexec}) "
            f"| {100 * p:.0f} % ± {100 * se:.0f} % | {cov / 60:.1f} + {secs / 60:.1f} min |"
        )
        for x in sorted(surv, key=lambda x: (x["file"], x["line"])):
            note = " [not executed by any test]" if x.get("not_executed") else ""
            surv_lines.append(
                f"  {x['file']}:{x['line']}: {x['original']}  →  {x['mutated']}"
                f"  ({x['operator']}){note}"
            )
    return "\n".join(rows) + (
        "\n\nSurviving mutants:\n" + "\n".join(surv_lines) if surv_lines else ""
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--package",
        action="append",
        choices=sorted(PACKAGES),
        help="package(s) to mutate (default: all)",
    )
    ap.add_argument("--list", action="store_true", help="enumerate the mutants, run nothing")
    ap.add_argument("--sample", type=int, default=None, help="mutants per package (default all)")
    ap.add_argument(
        "--sample-for",
        action="append",
        default=[],
        metavar="PKG=N",
        help="a per-package sample size overriding --sample",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the raw results here (after every mutant)")
    ap.add_argument("--resume", type=Path, help="reuse the verdicts in this earlier JSON")
    ap.add_argument("--commit", default="HEAD", help="the commit to mutate (default HEAD)")
    ap.add_argument("--worktree", type=Path, default=Path(tempfile.gettempdir()) / "mut_base")
    ap.add_argument("--remove-worktree", action="store_true", help="remove it at the end")
    ap.add_argument("--timeout-factor", type=float, default=3.0)
    ap.add_argument("--nice", type=int, default=15)
    ap.add_argument("--no-coverage", action="store_true")
    ap.add_argument("--no-jax-cache", action="store_true")
    ap.add_argument("--report", type=Path, help="print the table of this results JSON and exit")
    ap.add_argument(
        "--self-check",
        action="store_true",
        help="only check that a mutant that raises on import is killed",
    )
    args = ap.parse_args(argv)
    packages = args.package or list(PACKAGES)
    sizes = {p: args.sample for p in packages}
    for item in args.sample_for:
        k, v = item.split("=")
        sizes[k] = int(v)

    if args.report:
        results = json.loads(args.report.read_text())
        print(f"commit {results['commit'][:10]}, seed {results['seed']}")
        print(summarize(results, [p for p in PACKAGES if p in results["packages"]]))
        return 0

    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", args.commit],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    root = args.worktree.resolve()
    ensure_worktree(REPO, root, commit)

    if args.list:
        for pkg in packages:
            ms = enumerate_mutants(root, pkg)
            chosen = {m.id for m in sample(ms, sizes[pkg], args.seed, pkg)}
            by_op: dict[str, int] = {}
            for m in ms:
                by_op[m.operator] = by_op.get(m.operator, 0) + 1
            print(
                f"== {pkg}: {len(ms)} mutants  "
                + ", ".join(f"{k} {v}" for k, v in sorted(by_op.items()))
            )
            for m in ms:
                mark = "*" if m.id in chosen and sizes[pkg] is not None else " "
                print(f"{mark} {m.file}:{m.line}: {m.original}  →  {m.mutated}  ({m.operator})")
        return 0

    runner = Runner(root, args.timeout_factor, not args.no_jax_cache, args.nice)

    if args.self_check:
        ok = True
        for pkg in packages:
            rel = source_files(root, pkg)[0]
            text = (root / rel).read_text()
            edit = (len(text), len(text), "\nraise ImportError('mutation self-check')\n")
            m = Mutant(pkg, rel, 0, 0, "self-check", "", "raise", [edit])
            res = runner.run_mutant(m, PACKAGES[pkg][1], 100.0)
            print(f"{pkg}: {rel} + raise -> {res['status']} in {res['seconds']:.0f} s")
            ok &= res["status"] == "killed"
        return 0 if ok else 1

    results = {
        "commit": commit,
        "seed": args.seed,
        "timeout_factor": args.timeout_factor,
        "python": sys.version.split()[0],
        "packages": {},
        "mutants": {},
    }
    if args.resume and args.resume.exists():
        old = json.loads(args.resume.read_text())
        if old["commit"] != commit:
            raise SystemExit(f"{args.resume} is for {old['commit'][:10]}, not {commit[:10]}")
        results["mutants"] = old["mutants"]
        results["packages"] = old["packages"]

    def save():
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")

    t_start = time.monotonic()
    for pkg in packages:
        ms = enumerate_mutants(root, pkg)
        chosen = sample(ms, sizes[pkg], args.seed, pkg)
        prev = results["packages"].get(pkg, {})
        info = {
            "total": len(ms),
            "sources": PACKAGES[pkg][0],
            "tests": PACKAGES[pkg][1],
            "sample_size": len(chosen),
            "sampled": [m.id for m in chosen],
            "coverage_seconds": prev.get("coverage_seconds"),
        }
        results["packages"][pkg] = info
        todo = [m for m in chosen if m.id not in results["mutants"]]
        print(f"== {pkg}: {len(ms)} mutants, {len(chosen)} sampled, {len(todo)} to run", flush=True)
        if not todo:
            continue
        cov_file = root / f".mutation_coverage_{pkg}.json"
        cov = json.loads(cov_file.read_text()) if cov_file.exists() else None
        if cov is not None and sorted(cov) != sorted(PACKAGES[pkg][1]):
            cov = None  # another list of tests, or an interrupted pass: completed below
        if args.no_coverage:
            cov = None
            rc, _, seconds, out = runner.pytest(PACKAGES[pkg][1], None, runner.env())
            if rc != 0:
                raise SystemExit(f"unmutated tests of {pkg} fail in {root}:\n{out[-3000:]}")
            info["test_seconds"] = {"all": round(seconds, 1)}
            print(f"  unmutated: {seconds:.0f} s", flush=True)
        elif cov is None:
            t0 = time.monotonic()
            cov = runner.coverage(pkg, cov_file)
            cov = {t: cov[t] for t in PACKAGES[pkg][1]}
            info["coverage_seconds"] = round(time.monotonic() - t0, 1)
        if cov is not None:
            info["test_seconds"] = {t: round(v["seconds"], 1) for t, v in cov.items()}
            info["coverage_seconds"] = info["coverage_seconds"] or round(
                sum(v["seconds"] for v in cov.values()), 1
            )
            ordered = sorted(cov, key=lambda t: cov[t]["seconds"])
        ranges = {f: statement_ranges(root, f) for f in {m.file for m in todo}}
        for k, m in enumerate(todo):
            rec = {**{key: v for key, v in asdict(m).items() if key != "edits"}}
            if cov is None:
                tests, base = PACKAGES[pkg][1], info["test_seconds"]["all"]
            else:
                tests = covering(m, ranges[m.file], cov, ordered)
                base = sum(cov[t]["seconds"] for t in tests)
            if not tests:
                rec.update(status="survived", not_executed=True, seconds=0.0, tests=[])
            else:
                res = runner.run_mutant(m, tests, base)
                rec.update(res, tests=tests)
            results["mutants"][m.id] = rec
            save()
            print(
                f"  [{k + 1}/{len(todo)}] {rec['status']:8s} {rec['seconds']:6.1f} s  "
                f"{m.file}:{m.line}: {m.original}  →  {m.mutated}",
                flush=True,
            )
    results["wall_seconds_this_run"] = round(time.monotonic() - t_start, 1)
    shutil.rmtree(runner.scratch, ignore_errors=True)  # the coverage cache stays in the worktree
    save()
    print()
    print(summarize(results, packages))
    if args.remove_worktree:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(root)], check=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
