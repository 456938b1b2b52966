"""Every citation of the mathematics points at docs/maths.md, a file every clone has.

The code, tests, benchmarks, notebooks and the README cite sections as "maths §N"; each must
exist as a heading `## N.` of docs/maths.md, and nothing may cite a file outside the repository
(the old "THEORY §N" citations of a reference file that clones do not have). The code also
never speaks of issues.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MATHS = REPO / "docs" / "maths.md"
CITING = ["rdp_jax", "theory", "tests", "benchmarks", "notebooks"]
STALE = re.compile(r"THEORY(\.md)?\s*§|THEORY\.md|\.\./shared|shared/THEORY")
CITATION = re.compile(r"maths §(\d+)(?:\s*-\s*§?(\d+))?")
ISSUE = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)


def _texts(suffixes=(".py", ".md", ".ipynb")) -> dict[str, str]:
    files = [REPO / "README.md"]
    for top in CITING:
        files += [p for p in (REPO / top).rglob("*") if p.suffix in suffixes and p.is_file()]
    this = Path(__file__).resolve()
    return {str(p.relative_to(REPO)): p.read_text() for p in files if p.resolve() != this}


def _sections() -> set[int]:
    return {int(n) for n in re.findall(r"^## (\d+)\.", MATHS.read_text(), flags=re.MULTILINE)}


def test_no_citation_leaves_the_repository():
    stale = {
        path: sorted({m.group(0) for m in STALE.finditer(text)})
        for path, text in _texts().items()
        if STALE.search(text)
    }
    assert not stale, f"citations of a file outside the repository: {stale}"


def test_every_maths_citation_names_a_section_of_docs_maths():
    sections = _sections()
    assert set(range(1, 10)) <= sections  # §1-§9 at least
    missing = {}
    for path, text in _texts().items():
        for match in CITATION.finditer(text):
            first = int(match.group(1))
            last = int(match.group(2) or first)
            if not all(n in sections for n in range(first, last + 1)):
                missing.setdefault(path, []).append(match.group(0))
    assert not missing, f"citations of sections docs/maths.md does not have: {missing}"


def test_the_code_never_speaks_of_issues():
    found = {
        path: ISSUE.findall(text)
        for path, text in _texts((".py",)).items()
        if path.startswith(("rdp_jax", "theory")) and ISSUE.search(text)
    }
    assert not found, f"the code mentions issues: {found}"
