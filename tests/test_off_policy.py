"""Off-policy estimates (IPS, SNIPS, DR) of a target block's clicks from logs with logged
propensities, against a known position-based click model; and the Open Bandit Dataset
loader."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from recsys.data.bandit_logs import read_open_bandit
from recsys.errors import DataFormatError, RecsysError
from recsys.evaluation.off_policy import estimate, fit_click_model

EXAMINE = np.array([0.95, 0.65, 0.45])  # e_s: the chance that slot s is looked at
K = len(EXAMINE)


def attractiveness(seed: int = 0, readers: int = 40, articles: int = 8) -> np.ndarray:
    """a(u, i) in (0, 1): an article bias plus a reader-article interaction."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(readers, 2)), rng.normal(size=(articles, 2))
    bias = rng.normal(-0.5, 0.8, articles)
    return 1 / (1 + np.exp(-(bias + 1.2 * x @ y.T)))


def plackett_luce_marginals(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered slate of K out of the articles, each reader's cumulative probabilities
    of them under a Plackett-Luce logging policy favouring the reader's attractive articles,
    and the exact marginals P(article i at position s | reader) ``(readers, K, articles)``."""
    readers, m = A.shape
    slates = np.array(list(itertools.permutations(range(m), K)))
    weight = np.exp(1.5 * (A - A.mean(1, keepdims=True)))
    prob = np.ones((readers, len(slates)))
    left = np.repeat(weight.sum(1, keepdims=True), len(slates), 1)
    for s in range(K):
        w = weight[:, slates[:, s]]
        prob *= w / left
        left = left - w
    marginal = np.zeros((readers, K, m))
    for s in range(K):
        for i in range(m):
            marginal[:, s, i] = prob[:, slates[:, s] == i].sum(1)
    return slates, prob.cumsum(1), marginal


def simulate(A: np.ndarray, n: int, seed: int, plackett_luce=None) -> pd.DataFrame:
    """A log of n blocks of K slots, shaped as the news simulator's impressions: readers drawn
    uniformly, slates from the logging policy (uniformly random ordered K-subsets of the pool,
    or Plackett-Luce: ``plackett_luce_marginals(A)``), exact propensities, clicks from the
    position-based model."""
    rng = np.random.default_rng(seed)
    readers, m = A.shape
    reader = rng.integers(0, readers, n)
    if plackett_luce is None:
        slates = np.argsort(rng.random((n, m)), 1)[:, :K]
        propensity = np.full((n, K), 1 / m)  # P(article i at slot s) of a random ordering
    else:
        every, cumulative, marginal = plackett_luce
        pick = (rng.random(n)[:, None] > cumulative[reader]).sum(1)
        slates = every[np.minimum(pick, len(every) - 1)]
        propensity = marginal[reader[:, None], np.arange(K)[None], slates]
    clicked = rng.random((n, K)) < EXAMINE[None] * A[reader[:, None], slates]
    return pd.DataFrame(
        {
            "reader": np.repeat(reader, K),
            "session": np.repeat(np.arange(n), K),
            "time": np.repeat(np.arange(n, dtype=np.float64), K),
            "arm": "logging",
            "step": 0,
            "position": np.tile(np.arange(K), n),
            "article": slates.ravel(),
            "propensity": propensity.ravel(),
            "clicked": clicked.ravel().astype(int),
        }
    )


def targets(A: np.ndarray) -> dict:
    """Deterministic target policies (slates per reader) and their exact value under the PBM:
    V = mean over readers of sum_s e_s a(u, slate_s)."""
    top = np.argsort(-A, 1)[:, :K]  # each reader's true best K, best first
    popular = np.tile(np.argsort(-A.mean(0))[:K], (len(A), 1))  # the same K for everyone
    return {
        name: (slates, float((EXAMINE[None] * np.take_along_axis(A, slates, 1)).sum(1).mean()))
        for name, slates in (("top", top), ("popular", popular))
    }


def by_reader(slates: np.ndarray):
    return lambda contexts: slates[contexts["reader"].to_numpy()].tolist()


def true_model(A: np.ndarray):
    """The reward model that knows the PBM: e_s a(u, i)."""
    return lambda f: EXAMINE[f["position"].to_numpy()] * A[f["reader"], f["article"].astype(int)]


SEEDS = range(50)


def test_intervals_cover_the_true_value_in_most_seeds():
    """IPS, SNIPS and DR (with the default reward model, fitted on the same log) 95% intervals
    over 50 seeds, for two targets under two logging policies: each estimator covers the exact
    value in >= 90% of the 200 (seed, target, logging) cases, and in >= 80% of the 50 seeds of
    each case. Logs of 1000 blocks (about 125 matches per position): there the small-sample
    bias of SNIPS, and of DR with a model fitted on the same log, is small beside the
    interval's width (over seeds 0-199 each covered in 93-97% of the seeds of each case)."""
    A = attractiveness()
    loggings = {"uniform": None, "plackett-luce": plackett_luce_marginals(A)}
    hits = {}
    for seed, (logging, policy) in itertools.product(SEEDS, loggings.items()):
        log = simulate(A, 1000, seed, policy)
        for name, (slates, truth) in targets(A).items():
            got = estimate(log, by_reader(slates), seed=seed)
            for est in ("ips", "snips", "dr"):
                lo, hi = got[est]["ci95"]
                hits[logging, name, est] = hits.get((logging, name, est), 0) + (lo <= truth <= hi)
    for est in ("ips", "snips", "dr"):
        share = {case[:2]: h / len(SEEDS) for case, h in hits.items() if case[2] == est}
        assert np.mean(list(share.values())) >= 0.9, (est, share)
        assert min(share.values()) >= 0.8, (est, share)


def test_dr_with_a_good_reward_model_has_a_smaller_spread_than_ips():
    """With the reward model that knows the click model, DR's estimates over 30 seeds spread
    less than IPS's (their standard deviations were about 0.05 and 0.08 blocks' clicks), and
    its intervals are narrower."""
    A = attractiveness()
    slates, truth = targets(A)["top"]
    ips, dr, width_ips, width_dr = [], [], [], []
    for seed in range(30):
        got = estimate(simulate(A, 2000, seed), by_reader(slates), reward_model=true_model(A),
                       resamples=100)  # fmt: skip
        ips.append(got["ips"]["value"])
        dr.append(got["dr"]["value"])
        width_ips.append(np.diff(got["ips"]["ci95"])[0])
        width_dr.append(np.diff(got["dr"]["ci95"])[0])
    assert np.std(dr) < 0.85 * np.std(ips)
    assert np.mean(width_dr) < 0.85 * np.mean(width_ips)
    assert abs(np.mean(dr) - truth) < 3 * np.std(dr) / np.sqrt(len(dr))  # unbiased


def brute_force(log: pd.DataFrame, slate_of: dict, k: int, model) -> dict:
    """The estimators' formulas as loops over positions, contexts and rows."""
    out = {"ips": 0.0, "snips": 0.0, "dr": 0.0, "dm": 0.0, "logged": 0.0}
    for s in range(k):
        rows = [r for r in log.itertuples(index=False) if r.position == s]
        n_s = len(rows)
        ips = weight = dr = dm = clicks = 0.0
        for r in rows:
            slate = slate_of[(r.reader, r.session, r.step)]
            target = slate[s] if s < len(slate) else None
            w = (target == r.article) / r.propensity if target is not None else 0.0
            as_logged = pd.DataFrame([r._asdict()])
            r_logged = float(model(as_logged)[0])
            r_target = 0.0
            if target is not None:
                r_target = float(model(as_logged.assign(article=target))[0])
            ips += w * r.clicked
            weight += w
            dr += r_target + w * (r.clicked - r_logged)
            dm += r_target
            clicks += r.clicked
        out["ips"] += ips / n_s
        out["snips"] += ips / weight if weight > 0 else 0.0
        out["dr"] += dr / n_s
        out["dm"] += dm / n_s
        out["logged"] += clicks / n_s
    return out


def tiny_log() -> tuple[pd.DataFrame, dict]:
    rows = [  # reader, session, step, position, article, propensity, clicked
        ("u1", 1, 0, 0, "a", 0.5, 1),
        ("u1", 1, 0, 1, "b", 0.25, 0),
        ("u1", 1, 0, 2, "c", 0.2, 1),  # past k=2: left out
        ("u2", 2, 0, 0, "b", 0.4, 1),
        ("u2", 2, 0, 1, "a", 0.5, 1),
        ("u1", 1, 1, 0, "c", 0.3, 0),
        ("u1", 1, 1, 1, "a", 0.6, 1),
        ("u3", 3, 0, 1, "b", 0.5, 1),  # slot 0 not logged in this context: n_0 = 4, n_1 = 5
        ("u2", 4, 0, 0, "a", 0.8, 0),
        ("u2", 4, 0, 1, "c", 0.1, 1),
    ]
    log = pd.DataFrame(
        rows,
        columns=["reader", "session", "step", "position", "article", "propensity", "clicked"],
    )
    slate_of = {
        ("u1", 1, 0): ["a", "b", "c"],  # cut to k = 2
        ("u2", 2, 0): ["b", "c"],
        ("u1", 1, 1): ["a", "c"],
        ("u3", 3, 0): ["c", "b"],
        ("u2", 4, 0): ["a"],  # a short slate: slot 1 empty
    }
    return log, slate_of


def test_estimates_equal_a_brute_force_loop_on_a_tiny_log():
    log, slate_of = tiny_log()
    given = {"a": 0.7, "b": 0.4, "c": 0.2}

    def model(f):
        return np.array([given[a] for a in f["article"]]) * (1 - 0.3 * f["position"].to_numpy())

    before = log.copy()
    fitted = fit_click_model(log[log["position"] < 2])
    for reward_model, used in ((model, model), (None, fitted)):
        got = estimate(log, slate_of, k=2, reward_model=reward_model, resamples=50)
        want = brute_force(log[log["position"] < 2], slate_of, 2, used)
        for name, value in want.items():
            assert got[name]["value"] == pytest.approx(value, abs=1e-12), name
            assert got[name]["per_impression"] == pytest.approx(value / 2, abs=1e-12)
            lo, hi = got[name]["ci95"]
            assert lo <= hi
    pd.testing.assert_frame_equal(log, before)  # the caller's frame is left as it was
    assert got["contexts"] == 5 and got["rows"] == 9 and got["k"] == 2
    assert got["matches_per_position"] == [3, 2]  # a@0, b@0, a@0 (u2,4,0); b@1, b@1 (u3,3,0)
    assert got["max_weight"] == pytest.approx(4.0)  # b at slot 1 with propensity 0.25
    # a callable giving the same slates gives the same estimates, and the same seed the same
    # intervals
    keys = ("reader", "session", "step")
    again = estimate(
        log,
        lambda c: [slate_of[t] for t in c[list(keys)].itertuples(index=False, name=None)],
        k=2,
        resamples=50,
    )
    assert again["dr"] == got["dr"] and again["snips"] == got["snips"]


def test_fitted_click_model_recovers_a_position_based_model():
    rng = np.random.default_rng(3)
    n, m = 60_000, 6
    gamma = np.linspace(0.2, 0.9, m)
    article = rng.integers(0, m, (n, K))
    position = np.tile(np.arange(K), (n, 1))
    clicked = rng.random((n, K)) < EXAMINE[position] * gamma[article]
    log = pd.DataFrame(
        {"position": position.ravel(), "article": article.ravel(), "clicked": clicked.ravel()}
    )
    model = fit_click_model(log, prior=0.0)
    assert model.examination == pytest.approx(EXAMINE / EXAMINE[0], rel=0.03)
    assert model(pd.DataFrame({"position": [0, 2], "article": [5, 0]})) == pytest.approx(
        [EXAMINE[0] * gamma[5], EXAMINE[2] * gamma[0]], rel=0.05
    )


def test_resampling_readers_gives_wider_intervals_when_readers_come_back():
    A = attractiveness(readers=10)
    slates, _ = targets(A)["top"]
    log = simulate(A, 3000, 1)
    by_context = estimate(log, by_reader(slates), resamples=300)
    by_readers = estimate(log, by_reader(slates), resamples=300, cluster="reader")
    assert by_readers["units"] == 10 and by_readers["resampled"] == "reader"
    assert by_readers["dm"]["value"] == pytest.approx(by_context["dm"]["value"], rel=1e-12)
    assert np.diff(by_readers["dm"]["ci95"])[0] > np.diff(by_context["dm"]["ci95"])[0]


def write_obd(path, n: int, seed: int, gamma: np.ndarray) -> None:
    """An OBD-shaped CSV: a uniformly random behaviour policy over len(gamma) items, one
    (item, position) per row, positions 1..3, clicks from a PBM with reader-free gamma."""
    rng = np.random.default_rng(seed)
    m = len(gamma)
    item = rng.integers(0, m, n)
    position = rng.integers(1, K + 1, n)
    click = (rng.random(n) < EXAMINE[position - 1] * gamma[item]).astype(int)
    times = pd.Timestamp("2019-11-24", tz="UTC") + pd.to_timedelta(np.arange(n) * 7.5, unit="s")
    frame = pd.DataFrame(
        {
            "timestamp": times.astype(str),
            "item_id": item,
            "position": position,
            "click": click,
            "propensity_score": 1 / m,
            **{f"user_feature_{j}": rng.choice(["cef3390e", "81ce123c"], n) for j in range(4)},
            **{f"user-item_affinity_{j}": rng.integers(0, 2, n).astype(float) for j in range(m)},
        }
    )
    frame.to_csv(path)  # with the unnamed first column of row numbers, as OBD's files


def test_loader_reads_an_obd_shaped_file_and_the_estimator_runs_on_it(tmp_path):
    gamma = np.array([0.05, 0.3, 0.15, 0.6, 0.1])
    path = tmp_path / "random" / "all"
    path.mkdir(parents=True)
    write_obd(path / "all.csv", 30_000, 0, gamma)
    log = read_open_bandit(path / "all.csv")
    raw = pd.read_csv(path / "all.csv", index_col=0)
    assert list(log.columns[:7]) == [
        "context", "source", "time", "position", "article", "propensity", "clicked",
    ]  # fmt: skip
    assert "user_feature_3" in log.columns and "user-item_affinity_4" in log.columns
    assert (log["position"] == raw["position"] - 1).all()  # 1, 2, 3 -> 0, 1, 2
    assert log["article"].dtype == np.int64 and (log["article"] == raw["item_id"]).all()
    assert log["context"].is_unique and log["time"].dt.tz is not None

    best = [3, 1, 2]  # the target widget: the most attractive items, best on the left
    got = estimate(log, lambda contexts: [best] * len(contexts), resamples=500)
    truth = float((EXAMINE * gamma[best]).sum())
    for name in ("ips", "snips", "dr"):
        lo, hi = got[name]["ci95"]
        assert abs(got[name]["value"] - truth) < 4 * (hi - lo) / 3.92, name
    # per position: the rows at slot s are that slot's contexts
    at = log["position"] == 1
    want = (log["clicked"][at] * (log["article"][at] == 1) / log["propensity"][at]).mean()
    assert got["ips"]["per_position"][1] == pytest.approx(want)
    # a mapping by context works too, and several files (a glob) get distinct contexts
    write_obd(path / "more.csv", 50, 1, gamma)
    both = read_open_bandit(str(path / "*.csv"))
    assert both["context"].is_unique and len(both) == 30_050
    small = both[both["source"].str.endswith("more.csv")]
    assert estimate(small, {c: best for c in small["context"]}, resamples=20)["contexts"] == 50


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_loader_errors_name_the_file_row_and_column(tmp_path):
    path = tmp_path / "men.csv"
    write_obd(path, 20, 2, np.full(4, 0.3))
    text = path.read_text().splitlines()

    def broken(line: int, column: str, value: str):
        header = text[0].split(",")
        cells = text[line].split(",")
        cells[header.index(column)] = value
        bad = tmp_path / "bad.csv"
        bad.write_text("\n".join([*text[:line], ",".join(cells), *text[line + 1 :]]) + "\n")
        return bad

    with pytest.raises(DataFormatError) as e:
        read_open_bandit(broken(3, "propensity_score", "0"))
    assert "bad.csv, row 3 (line 4), column 'propensity_score'" in one_line(e)
    with pytest.raises(DataFormatError) as e:
        read_open_bandit(broken(5, "position", "0"))
    assert "row 5 (line 6), column 'position'" in one_line(e) and "first_position" in str(e.value)
    with pytest.raises(DataFormatError) as e:
        read_open_bandit(broken(2, "click", "2"))
    assert "row 2 (line 3), column 'click'" in one_line(e)
    with pytest.raises(DataFormatError) as e:
        read_open_bandit(broken(4, "item_id", ""))
    assert "row 4 (line 5), column 'item_id'" in one_line(e)
    pd.read_csv(path, index_col=0).drop(columns=["propensity_score"]).to_csv(tmp_path / "np.csv")
    with pytest.raises(DataFormatError) as e:
        read_open_bandit(tmp_path / "np.csv")
    assert "np.csv: column 'propensity_score'" in one_line(e)
    # a 0-based file is read with first_position=0
    pd.read_csv(path, index_col=0).assign(position=lambda f: f["position"] - 1).to_csv(
        tmp_path / "zero.csv"
    )
    assert read_open_bandit(tmp_path / "zero.csv", first_position=0)["position"].min() == 0


def test_estimate_errors_are_one_clear_line():
    log, slate_of = tiny_log()
    zero = log.assign(propensity=[0.5, 0.0, *log["propensity"][2:]])
    no_u3 = {key: slate for key, slate in slate_of.items() if key[0] != "u3"}
    cases = [
        (log.drop(columns=["propensity"]), slate_of, "column 'propensity' not found"),
        (zero, slate_of, "row 1, column 'propensity': 0.0 must be in (0, 1]"),
        (log.assign(propensity=-1.0), slate_of, "must be in (0, 1]"),
        (log.assign(clicked=3), slate_of, "column 'clicked': 3 must be 0 or 1"),
        (log, no_u3, "no slate for the context ('u3', 3, 0)"),
        (
            log.assign(step=0),
            slate_of,
            "row 5, column 'position': 0 is logged twice for the context ('u1', 1, 0)",
        ),
        (log, {key: [1, 2] for key in slate_of}, "none of the target slates' articles appears"),
        (log, {key: ["a", "a"] for key in slate_of}, "shows an article twice"),
        (log, {**slate_of, ("u3", 3, 0): ["c", None]}, "has an empty article"),
        (log, lambda c: [["a"]], "returned 1 slates for 5 contexts"),
    ]
    for frame, slates, expected in cases:
        with pytest.raises(RecsysError) as e:
            estimate(frame, slates, resamples=10)
        assert expected in one_line(e), (expected, str(e.value))
    with pytest.raises(RecsysError) as e:
        estimate(log, slate_of, k=4, resamples=10)
    assert "no row at position 3" in one_line(e)
