"""How many seeds a comparison needs, and what a sweep's results say against a paper's
effect: a hand-worked sample size, a simulation of the paired t-test it sizes, Student-t
critical values from a printed table, and results.md's verdicts on runs written here."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest
import yaml

from classroom.environments.stats import mean_ci, resolved, seeds_to_resolve, t95


@pytest.mark.parametrize(("dof", "printed"), [(1, 12.706), (30, 2.042), (31, 2.040), (40, 2.021), (60, 2.000), (120, 1.980)])
def test_t95_matches_the_printed_table(dof: int, printed: float) -> None:
    assert t95(dof) == pytest.approx(printed, abs=0.001)


def test_a_ci_of_forty_seeds_uses_t_not_the_normal() -> None:
    values = [float(i % 2) for i in range(40)]
    _, ci = mean_ci(values)
    assert ci == pytest.approx(2.0227 * statistics.stdev(values) / math.sqrt(40), rel=1e-3)


def test_seeds_to_resolve_by_hand() -> None:
    # ((1.95996 + 0.84162) * 0.1 / 0.05)^2 + 1.95996^2 / 2 = 31.40 + 1.92 = 33.32 -> 34
    assert seeds_to_resolve(0.1, 0.05) == 34
    assert seeds_to_resolve(0.1, -0.05) == 34  # a drop is sized as a gain
    assert seeds_to_resolve(0.0, 0.05) is None and seeds_to_resolve(0.1, 0.0) is None


def _power(n: int, effect: float, sd: float, trials: int = 3000) -> float:
    """The share of simulated paired experiments of n pairs whose 95% CI excludes 0."""
    rng = random.Random(0)
    hits = 0
    for _ in range(trials):
        mean, ci = mean_ci([rng.gauss(effect, sd) for _ in range(n)])
        hits += resolved(mean, ci)
    return hits / trials


@pytest.mark.parametrize(("effect", "sd"), [(0.05, 0.1), (0.2, 0.15)])
def test_the_sized_experiment_has_its_power_in_simulation(effect: float, sd: float) -> None:
    n = seeds_to_resolve(sd, effect)
    assert 0.76 <= _power(n, effect, sd) <= 0.86
    assert _power(max(2, n // 2), effect, sd) < 0.7


def _run(root, number: int, policy: str, seed: int, score: float, effects: list) -> None:
    run = root / str(number)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"env/intervention={policy}", f"seed={seed}"]))
    compare = {"baseline": {"env/intervention": "random"}, "effects": effects}
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "env": {"loop": "tom"}, "compare": compare}))
    (run / "summary.json").write_text(json.dumps({"status": "completed", "env": "tom", "scores": {"acc@0.5": score}}))


def test_results_say_not_resolved_and_how_many_seeds_the_paper_effect_needs(tmp_path) -> None:
    from classroom.launch.results import write_results

    # Paired differences worked by hand: oracle - random = 0.1, 0.2, 0.3 (mean 0.2, sd
    # 0.1, CI 4.303 * 0.1 / sqrt 3 = 0.248: holds 0); mental_model - random = 0.30,
    # 0.31, 0.29 (CI 0.025: resolved). Seeds for the paper's 0.1 at sd 0.1:
    # (2.80158 * 1)^2 + 1.92 = 9.77 -> 10; at sd 0.01: 0.08 + 1.92 = 2.0 -> 2.
    effects = [
        {"when": {"env/intervention": policy}, "score": "acc@0.5", "effect": 0.1, "source": "a paper"}
        for policy in ("oracle", "mental_model")
    ]
    scores = {"random": [0.1, 0.1, 0.1], "oracle": [0.2, 0.3, 0.4], "mental_model": [0.4, 0.41, 0.39]}
    number = 0
    for policy, by_seed in scores.items():
        for seed, score in enumerate(by_seed):
            _run(tmp_path, number, policy, seed, score, effects)
            number += 1
    _, md, _ = write_results(tmp_path)
    text = md.read_text()
    assert "## Against the paper's effects" in text
    assert "| oracle | acc@0.5 | 3 | 0.200 ± 0.248 | not resolved at n = 3 | 0.100 | 10 | a paper |" in text
    assert "| mental_model | acc@0.5 | 3 | 0.300 ± 0.025 | resolved | 0.100 | 2 | a paper |" in text
    assert text.count("| a paper |") == 2  # each effect judged on the configuration it names only


def test_a_score_named_pairs_keeps_its_own_column_beside_the_count_of_paired_runs(tmp_path) -> None:
    """M2's score `pairs` (its preference pairs) once took the place of the count of
    paired runs in the paired-differences table and the report (sweep=lbt_m2 showed
    "7.000 ± 11.385" as the count). Worked by hand: pairs 6, 12, 3 against the
    baseline's 0, 0, 0 -> mean 7, CI 4.303 * 4.583 / sqrt 3 = 11.385; 3 runs paired."""
    from classroom.launch.report import _paired_entries
    from classroom.launch.results import write_results

    number = 0
    for policy, by_seed in {"random": [0, 0, 0], "oracle": [6, 12, 3]}.items():
        for seed, pairs in enumerate(by_seed):
            _run(tmp_path, number, policy, seed, 0.1, [])
            summary = json.loads((tmp_path / str(number) / "summary.json").read_text())
            summary["scores"]["pairs"] = pairs
            (tmp_path / str(number) / "summary.json").write_text(json.dumps(summary))
            number += 1
    _, md, _ = write_results(tmp_path)
    paired = md.read_text().split("## Paired differences")[1]
    header, _, row = paired.strip().splitlines()[2:5]
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    assert cells["paired runs"] == "3" and cells["pairs"] == "7.000 ± 11.385", cells
    [entry], _ = _paired_entries(tmp_path)
    assert entry["n"] == 3 and entry["values"]["pairs"] == pytest.approx((7.0, 11.385), abs=1e-3)
