"""Paired tests, bootstrap intervals, Holm's correction, and the recsys-compare table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recsys import compare as C
from recsys.evaluation.significance import bootstrap_ci, holm, paired_t_test, wilcoxon_test


def test_paired_t_test_matches_its_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(0.3, 0.2, 40)
    b = a - rng.normal(0.05, 0.1, 40)
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    want = 2 * stats.t.sf(abs(t), len(d) - 1)
    assert paired_t_test(a, b) == pytest.approx(want, rel=1e-10)
    assert paired_t_test(a, a) == 1.0


def test_wilcoxon_matches_exact_enumeration():
    rng = np.random.default_rng(1)
    d = rng.permutation(np.arange(1, 11)) * rng.choice([-1, 1], 10) * 0.01  # no ties, no zeros
    d[[0, 1, 2]] = np.abs(d[[0, 1, 2]])
    a, b = 0.5 + d, np.full(10, 0.5)
    ranks = stats.rankdata(np.abs(d))
    w_plus = ranks[d > 0].sum()
    dist = [
        sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=10)
    ]
    dist = np.array(dist)
    p = 2 * min((dist <= w_plus).mean(), (dist >= w_plus).mean())
    assert wilcoxon_test(a, b) == pytest.approx(min(p, 1.0), rel=1e-10)
    # zero differences are dropped
    a2, b2 = np.append(a, [0.7, 0.2]), np.append(b, [0.7, 0.2])
    assert wilcoxon_test(a2, b2) == pytest.approx(wilcoxon_test(a, b), rel=1e-10)


def test_bootstrap_interval_of_the_mean_is_close_to_the_normal_one():
    rng = np.random.default_rng(2)
    v = rng.exponential(1.0, 5000)
    lo, hi = bootstrap_ci(v, 0.95, resamples=4000, seed=1)
    half = 1.96 * v.std(ddof=1) / math.sqrt(len(v))
    assert lo < v.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.08)
    assert bootstrap_ci(v, 0.95, 4000, seed=1) == (lo, hi)  # seeded


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    want = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        want[i] = running
    assert holm(p) == pytest.approx(want)


def write_run(path, users, values):
    path.mkdir(parents=True)
    pd.DataFrame(
        {"user": users, "n_test": 3, "ndcg@20": values, "recall@20": values / 2}
    ).to_parquet(path / "per_user_metrics.parquet", index=False)


def test_compare_table_and_command(tmp_path, capsys):
    rng = np.random.default_rng(3)
    users = np.array([f"u{i}" for i in range(300)])
    base = rng.uniform(0, 1, 300)
    write_run(tmp_path / "base", users, base)
    write_run(tmp_path / "better", users[::-1], (base + 0.1 + rng.normal(0, 0.05, 300))[::-1])
    write_run(tmp_path / "same", users, base.copy())
    runs = C.load_runs([str(tmp_path / n) for n in ("base", "better", "same")])
    table = C.compare(runs, "base", ["ndcg@20"], resamples=2000)
    better = table[table.run == "better"].iloc[0]
    assert better["diff"] == pytest.approx(0.1, abs=0.01)  # users matched by id, not by row
    assert better["p_ttest"] < 1e-6 and better["diff_ci_low"] > 0.08
    same = table[table.run == "same"].iloc[0]
    assert same["diff"] == 0 and same["p_ttest"] == 1.0 and same["p_wilcoxon"] == 1.0
    assert table[table.run == "base"]["p_ttest"].isna().all()
    assert better["p_holm"] == pytest.approx(min(1.0, 2 * better["p_ttest"]))

    out = tmp_path / "t.csv"
    C.main(
        [
            str(tmp_path / "base"),
            str(tmp_path / "better"),
            "--format",
            "csv",
            "--output",
            str(out),
            "--resamples",
            "500",
        ]
    )
    csv = pd.read_csv(out)
    assert list(csv.columns) == C.COLUMNS and set(csv.metric) == {"ndcg@20", "recall@20"}
    C.main(
        [
            str(tmp_path / "base"),
            str(tmp_path / "better"),
            "--resamples",
            "500",
            "--baseline",
            "better",
        ]
    )
    printed = capsys.readouterr()
    assert "| better | ndcg@20 |" in printed.out and "baseline: better" in printed.err


def test_compare_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        C.main([str(tmp_path / "nope")])
    assert e.value.code == 2
    assert "per_user_metrics.parquet does not exist" in capsys.readouterr().err


def test_a_multirun_folder_counts_as_one_run_averaged_per_user(tmp_path):
    users = np.array(["a", "b", "c"])
    write_run(tmp_path / "sweep" / "0", users, np.array([0.2, 0.4, 0.6]))
    write_run(tmp_path / "sweep" / "1", users[::-1], np.array([0.0, 0.2, 0.4]))  # c, b, a
    frame = C.load_runs([str(tmp_path / "sweep")])["sweep"]
    assert frame.loc["a", "ndcg@20"] == pytest.approx((0.2 + 0.4) / 2)
    assert frame.loc["c", "ndcg@20"] == pytest.approx((0.6 + 0.0) / 2)


def test_labels_and_a_sweep_folder_stands_for_its_best_trial(tmp_path, capsys):
    import optuna

    users = np.array(["a", "b", "c", "d"])
    sweep = tmp_path / "sweep"
    study = optuna.create_study(
        study_name="s", storage=f"sqlite:///{sweep.mkdir() or sweep / 'study.db'}",
        direction="maximize",
    )  # fmt: skip
    for number, value in enumerate([0.3, 0.9, 0.5]):  # trial 1 is the best
        trial = study.ask()
        write_run(sweep / f"trial_{number:03d}", users, np.full(4, value))
        study.tell(trial, value)
    write_run(tmp_path / "base", users, np.full(4, 0.1))
    runs = C.load_runs([f"binary={tmp_path / 'base'}", f"tuned={sweep}"])
    assert list(runs) == ["binary", "tuned"]
    assert runs["tuned"]["ndcg@20"].tolist() == [0.9] * 4
    assert "best trial 1" in capsys.readouterr().err
    with pytest.raises(Exception, match="more than one run"):
        C.load_runs([f"x={tmp_path / 'base'}", f"x={sweep}"])


def test_history_restricts_the_comparison_to_a_user_segment(tmp_path, capsys):
    users = np.array([f"u{i}" for i in range(6)])
    for name, values in (("a", np.arange(6) / 10), ("b", np.arange(6) / 10 + 0.05)):
        (tmp_path / name).mkdir()
        pd.DataFrame(
            {"user": users, "n_train": [0, 1, 2, 3, 9, 20], "n_test": 2, "ndcg@20": values}
        ).to_parquet(tmp_path / name / "per_user_metrics.parquet", index=False)
    runs = C.load_runs([str(tmp_path / "a"), str(tmp_path / "b")])
    few = C.history_filter(runs, "0-2")
    assert few["a"].index.tolist() == ["u0", "u1", "u2"]
    assert C.history_filter(runs, "3+")["b"].index.tolist() == ["u3", "u4", "u5"]
    assert C.history_filter(runs, "9")["a"].index.tolist() == ["u4"]
    C.main([str(tmp_path / "a"), str(tmp_path / "b"), "--history", "0-2", "--resamples", "200"])
    assert "| b | ndcg@20 | 3 |" in capsys.readouterr().out
    C.main([str(tmp_path / "a"), str(tmp_path / "b"), "--history", "30+"])  # nobody: a note
    assert capsys.readouterr().out.strip() == (
        "no evaluated user has 30+ training interactions in these runs"
    )
    with pytest.raises(Exception, match="LO-HI"):
        C.history_filter(runs, "few")
