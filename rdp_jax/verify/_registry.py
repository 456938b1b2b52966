"""Claims: named, sourced numerical statements that `rdp-jax verify` measures and judges."""

import dataclasses
import math
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

Comparison = Literal["equal", "at_most", "at_least", "report"]
Evidence = Literal["brute force", "Monte Carlo", "analytic", "golden", "consistency"]
"""What a claim's reference is, so that a reader can weigh its verdict.

- `"brute force"`: an optimiser or an exhaustive search that knows nothing of the closed form.
- `"Monte Carlo"`: samples, judged against their own standard errors.
- `"analytic"`: an exact formula computed independently of the code it judges (a Gaussian
  posterior mean against an ODE solver, say).
- `"golden"`: a value recorded once and kept (a stream and the hash of its decoded sample).
- `"consistency"`: two parts of rdp-jax checked against each other. They may share helpers and
  mistakes, so such a claim never cites a theorem as its source.
"""
EVIDENCE: tuple[Evidence, ...] = ("brute force", "Monte Carlo", "analytic", "golden", "consistency")
# A consistency check verifies no theorem; its source must not say it does.
_THEOREM_CITATION = re.compile(r"\b(Thm|Theorem|Lemma|Prop|Proposition|Corollary)\b")


def one_sided_t(samples: int, rate: float = 1e-3) -> float:
    """The multiple of a mean's standard error that a one-sided check allows: Student's t
    quantile with `samples` − 1 degrees of freedom, so that a true mean sitting exactly on the
    bound fails with probability `rate` when the SE is estimated from those samples (3.09
    standard errors for a normal mean, 4.79 with 8 samples, 3.31 with 40)."""
    import scipy.stats

    return float(scipy.stats.t.isf(rate, samples - 1))


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a claim measured, what it expected, and how they are compared.

    - `comparison="equal"`: passes when |measured - expected| ≤ tolerance.
    - `"at_most"` / `"at_least"`: measured ≤ expected + tolerance / ≥ expected - tolerance.
    - `"report"`: a figure worth printing that asserts nothing (verdict INFO).
    - `detail`: one line on how it was measured (sample size, grid, worst point).
    """

    measured: float
    expected: float
    tolerance: float
    comparison: Comparison = "equal"
    detail: str = ""

    def passed(self) -> bool | None:
        m, e, t = self.measured, self.expected, self.tolerance
        if self.comparison == "report":
            return None
        if math.isnan(m):
            return False
        if self.comparison == "equal":
            return abs(m - e) <= t or m == e
        if self.comparison == "at_most":
            return m <= e + t
        return m >= e - t


@dataclasses.dataclass(frozen=True)
class Claim:
    name: str
    source: str
    group: str
    evidence: Evidence
    measure: Callable[[], Measurement]
    full: bool = False


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """A judged claim, as printed by `rdp-jax verify` (and its `--json`)."""

    name: str
    source: str
    group: str
    evidence: Evidence
    measured: float
    expected: float
    tolerance: float
    comparison: Comparison
    verdict: Literal["PASS", "FAIL", "INFO", "ERROR"]
    detail: str
    seconds: float


_REGISTRY: dict[str, Claim] = {}


def claim(
    name: str, source: str, *, group: str, evidence: Evidence, full: bool = False
) -> Callable:
    """Registers a zero-argument function returning a `Measurement` as a claim.

    **Arguments:**

    - `name`: unique, short, says what is claimed ("rdp_w2 = brute force").
    - `source`: the paper and result it checks ("Zhang et al. 2021, Gaussian RDP closed form").
    - `group`: which part of rdp-jax it exercises ("theory", "decoder", "rcc", ...).
    - `evidence`: what the reference is (see `Evidence`); printed beside the verdict.
    - `full`: a long check, run only by `rdp-jax verify --full`. The default run must fit in
      a minute on 2 cores, so each group keeps a quick claim there and its long versions here.

    **Raises:** `ValueError` when the name is taken, `group` is not one of `GROUPS`, `evidence`
    is not one of `EVIDENCE`, or a consistency check cites a theorem as its source.
    """
    if group not in GROUPS:
        raise ValueError(f"claim: `group` must be one of {GROUPS}, got {group!r}.")
    if evidence not in EVIDENCE:
        raise ValueError(f"claim: `evidence` must be one of {EVIDENCE}, got {evidence!r}.")
    if evidence == "consistency" and _THEOREM_CITATION.search(source):
        raise ValueError(
            f"claim: {name!r} is a consistency check but its source cites a theorem "
            f"({source!r}); cite what is compared, or give it an independent reference."
        )

    def register(measure: Callable[[], Measurement]) -> Callable[[], Measurement]:
        if name in _REGISTRY:
            raise ValueError(f"claim: the name {name!r} is registered twice.")
        _REGISTRY[name] = Claim(name, source, group, evidence, measure, full)
        return measure

    return register


# The analytic truth first, then the machinery that is checked against it, bottom layer first.
GROUPS = ("theory", "decoder", "rcc", "codec", "models")


def registered_claims(groups: Iterable[str] | None = None, *, full: bool = False) -> list[Claim]:
    """The registered claims in a fixed order: by group (`GROUPS`), then by registration.

    **Arguments:**

    - `groups`: only claims of these groups; all when `None`.
    - `full`: include the long claims registered with `full=True`.

    **Raises:** `ValueError` naming the valid groups when one of `groups` is unknown.
    """
    wanted = set(GROUPS) if groups is None else set(groups)
    if unknown := sorted(wanted - set(GROUPS)):
        raise ValueError(
            f"registered_claims: unknown group {', '.join(map(repr, unknown))}; "
            f"the groups are {', '.join(GROUPS)}."
        )
    chosen = [c for c in _REGISTRY.values() if c.group in wanted and (full or not c.full)]
    return sorted(chosen, key=lambda c: GROUPS.index(c.group))  # stable within a group


def run_claims(claims: Iterable[Claim]) -> Iterator[ClaimResult]:
    """Measures and judges each claim in turn; an exception becomes an ERROR verdict."""
    for c in claims:
        start = time.perf_counter()
        try:
            m = c.measure()
        except Exception as error:  # reported as the claim's verdict, never raised
            last = traceback.format_exception_only(error)[-1].strip()
            nan = float("nan")
            yield ClaimResult(
                c.name,
                c.source,
                c.group,
                c.evidence,
                nan,
                nan,
                nan,
                "equal",
                "ERROR",
                last,
                time.perf_counter() - start,
            )
            continue
        verdict = {True: "PASS", False: "FAIL", None: "INFO"}[m.passed()]
        yield ClaimResult(
            c.name,
            c.source,
            c.group,
            c.evidence,
            float(m.measured),
            float(m.expected),
            float(m.tolerance),
            m.comparison,
            verdict,
            m.detail,
            time.perf_counter() - start,
        )
