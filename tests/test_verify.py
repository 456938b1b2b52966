"""The claim registry, its verdicts, the report and the `rdp-jax` command line."""

import json
import math

import pytest

from rdp_jax import _report, cli
from rdp_jax.verify import Measurement, _registry, claim, registered_claims, run_claims
from rdp_jax.verify._registry import one_sided_t


@pytest.mark.parametrize(
    ("measurement", "verdict"),
    [
        (Measurement(1.0, 1.05, 0.1), True),
        (Measurement(1.0, 1.2, 0.1), False),
        (Measurement(1.0, 0.95, 0.0, "at_most"), False),
        (Measurement(0.9, 1.0, 0.0, "at_most"), True),
        (Measurement(1.1, 1.0, 0.0, "at_least"), True),
        (Measurement(0.8, 1.0, 0.1, "at_least"), False),
        (Measurement(math.nan, 1.0, 0.1), False),
        (Measurement(math.inf, math.inf, 0.0), True),
        (Measurement(3.0, 0.0, 0.0, "report"), None),
    ],
)
def test_measurement_verdicts(measurement, verdict):
    assert measurement.passed() is verdict


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", {})
    return _registry._REGISTRY


def test_claims_register_run_and_judge(scratch_registry):
    @claim("passes", "a source", group="decoder", evidence="analytic")
    def _passes():
        return Measurement(1.0, 1.0, 0.0)

    @claim("fails", "a source", group="theory", evidence="brute force")
    def _fails():
        return Measurement(2.0, 1.0, 0.5)

    @claim("raises", "a source", group="theory", evidence="brute force")
    def _raises():
        raise RuntimeError("boom")

    claims = registered_claims()
    assert [c.name for c in claims] == ["fails", "raises", "passes"]  # theory group first
    assert [c.name for c in registered_claims(["decoder"])] == ["passes"]
    results = list(run_claims(claims))
    assert [r.verdict for r in results] == ["FAIL", "ERROR", "PASS"]
    assert "boom" in results[1].detail
    table = _report.format_table(results)
    assert "FAIL" in table and "a source" in table
    assert "1 pass, 1 fail, 1 error" in _report.summary(results)
    rows = json.loads(_report.to_json(results))
    assert rows[1]["measured"] is None and rows[2]["verdict"] == "PASS"
    with pytest.raises(ValueError, match="twice"):
        claim("passes", "again", group="theory", evidence="brute force")(_passes)


def test_cli_json_and_exit_codes(scratch_registry, capsys):
    @claim("fine", "src", group="theory", evidence="brute force")
    def _fine():
        return Measurement(0.0, 0.0, 1e-12)

    assert cli.main(["verify", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "fine" and row["verdict"] == "PASS"

    @claim("broken", "src", group="theory", evidence="brute force")
    def _broken():
        return Measurement(1.0, 0.0, 1e-12)

    assert cli.main(["verify"]) == 1
    assert "broken" in capsys.readouterr().out
    assert cli.main(["verify", "--match", "nothing-matches"]) == 2
    assert cli.main(["verify", "--list"]) == 0


def test_registered_project_claims_are_well_formed():
    claims = registered_claims()
    assert len({c.name for c in claims}) == len(claims)
    assert {c.group for c in claims} >= {"theory", "decoder"}
    assert all(c.source for c in claims)
    # Every group rests on at least one independent reference, not on consistency alone.
    for group in {c.group for c in claims}:
        assert any(c.evidence != "consistency" for c in claims if c.group == group), group


def test_full_claims_run_only_with_full(scratch_registry, capsys):
    @claim("quick", "src", group="rcc", evidence="analytic")
    def _quick():
        return Measurement(0.0, 0.0, 0.0)

    @claim("long", "src", group="rcc", evidence="analytic", full=True)
    def _long():
        return Measurement(0.0, 0.0, 0.0)

    assert [c.name for c in registered_claims()] == ["quick"]
    assert [c.name for c in registered_claims(full=True)] == ["quick", "long"]
    assert cli.main(["verify", "--full", "--list"]) == 0
    assert "[full] long" in capsys.readouterr().out


def test_unknown_group_is_refused_with_the_list(scratch_registry, capsys):
    with pytest.raises(ValueError, match="the groups are theory, decoder, rcc, codec, models"):
        registered_claims(["nonexistent"])
    with pytest.raises(ValueError, match="`group` must be one of"):
        claim("x", "src", group="nonexistent", evidence="analytic")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["verify", "--group", "nonexistent", "--list"])
    assert exit_info.value.code == 2
    assert "theory" in capsys.readouterr().err


def test_help_lists_the_groups_the_registry_knows(capsys):
    from rdp_jax._commands import verify as verify_command

    assert verify_command.GROUPS == _registry.GROUPS
    with pytest.raises(SystemExit):
        cli.main(["verify", "--help"])
    help_text = capsys.readouterr().out
    assert all(group in help_text for group in _registry.GROUPS)


def test_json_mode_reports_progress_on_stderr(scratch_registry, capsys):
    @claim("fine", "src", group="theory", evidence="analytic")
    def _fine():
        return Measurement(0.0, 0.0, 0.0)

    assert cli.main(["verify", "--json"]) == 0
    captured = capsys.readouterr()
    assert "[1/1] PASS  fine" in captured.err
    assert json.loads(captured.out)[0]["name"] == "fine"


def test_one_sided_t_is_students_quantile():
    # The t quantile, not the normal one: 8 samples need 4.79 SE for a 1e-3 false failure.
    assert one_sided_t(8) == pytest.approx(4.785, abs=1e-3)
    assert one_sided_t(40) == pytest.approx(3.313, abs=1e-3)
    assert one_sided_t(10**7) == pytest.approx(3.090, abs=1e-3)
