#!/usr/bin/env python3
"""Trains the spot interruption-risk model (contract v1) from simulator history.

    cargo run --release -p spot-cloud --no-default-features --example export_history -- 42 61 > /tmp/history.csv
    python3 onnx/train.py --csv /tmp/history.csv --out onnx

Writes `risk-v1.onnx`, `contract_vectors.json`, `testdata/{wrong_inputs,out_of_range}.onnx`
and `metrics.json` into --out, and prints held-out AUC / Brier for the model and for the
static heuristic baseline (`features.heuristic_probability`, the same rule as the Rust
`HeuristicModel`).

Model: logistic regression over the 22 contract features plus piecewise-linear hinge
terms `relu(x - knot)` (knots at training quantiles) for the continuous ones, i.e. a
linear-spline GAM. The graph is written by hand with basic ONNX ops (MatMul, Sub, Relu,
Concat, Add, Sigmoid, Reshape) so it runs on tract (ort-tract) and onnxruntime alike; tree
ensembles failed in tract 0.23.9 and skl2onnx's ZipMap/[N,2] outputs do not match the
contract. The batch dimension is named `N` (tract needs a named dynamic dimension).

Split: by simulated days, the last 20% of days are held out; C is chosen on the last 20%
of the training days, then the model is refit on all training days.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
from datetime import datetime

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features as F  # noqa: E402

SEED = 20261123
# Share of rows whose placement score is hidden, so the model learns the missing flag.
CAPACITY_MISSING_RATE = 0.1
# Continuous features that get hinge (linear spline) terms, and the knot quantiles.
SPLINE_FEATURES = [
    "log_spot_price_last",
    "price_ratio_last",
    "price_ratio_mean_24h",
    "price_volatility_24h",
    "price_trend_24h",
    "capacity_signal",
    "hive_flags_24h_log1p",
    "vcpu_log2",
    "family_generation",
]
KNOT_QUANTILES = [0.1, 0.25, 0.5, 0.75, 0.9]
# The capacity signal has ten levels and drives most of the risk: one knot between each
# pair of levels makes its effect free-form instead of quantile-limited.
FIXED_KNOTS = {"capacity_signal": [0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]}
# Regularisation grid; validation Brier was flat over 0.01–10 on the 61-day export.
C_GRID = (1.0,)
OPSET = 13
IR_VERSION = 7


def load_csv(path: str) -> dict[str, np.ndarray]:
    """Column arrays of the export; repeated strings are interned (millions of rows)."""
    text_cols = ("time", "instance_type", "family", "category", "az")
    int_cols = ("vcpu", "memory_mib", "gpus", "az_index", "placement_score", "interrupted_next_hour")
    float_cols = ("spot_price", "on_demand_price", "capacity")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        pos = {name: header.index(name) for name in text_cols + int_cols + float_cols}
        cols: dict[str, list] = {name: [] for name in pos}
        for row in reader:
            for k in text_cols:
                cols[k].append(sys.intern(row[pos[k]]))
            for k in int_cols:
                cols[k].append(int(row[pos[k]]))
            for k in float_cols:
                cols[k].append(float(row[pos[k]]))
    out: dict[str, np.ndarray] = {}
    for k in text_cols:
        out[k] = np.array(cols.pop(k))
    for k in int_cols:
        out[k] = np.array(cols.pop(k), dtype=np.int64)
    for k in float_cols:
        out[k] = np.array(cols.pop(k), dtype=np.float64)
    return out


def build_rows(d: dict[str, np.ndarray], rng: np.random.Generator):
    """Per pool (contiguous, oldest first): 24 h price windows and the hive-flag count.

    At row hour h (the price in force during h is known), the interruptions already seen
    are those during hours <= h-1, i.e. the labels of rows <= h-2. The hive-mind count is
    the sum over the 24 such hours (rows h-25 .. h-2). The first 25 rows of each pool lack
    a full window and are dropped.
    """
    pool = np.char.add(np.char.add(d["instance_type"], "/"), d["az"])
    starts = np.flatnonzero(np.r_[True, pool[1:] != pool[:-1]])
    ends = np.r_[starts[1:], len(pool)]
    keep, windows, flags = [], [], []
    label = d["interrupted_next_hour"]
    for s, e in zip(starts, ends):
        if e - s <= 25:
            continue
        prices = d["spot_price"][s:e]
        win = np.lib.stride_tricks.sliding_window_view(prices, F.HISTORY_HOURS)  # win[k] ends at s+k+23
        lab = np.r_[0, np.cumsum(label[s:e])]  # lab[i] = sum(label[s : s+i])
        idx = np.arange(25, e - s)
        keep.append(s + idx)
        windows.append(win[idx - 23])
        flags.append(lab[idx - 1] - lab[idx - 25])  # labels of rows idx-25 .. idx-2
    keep = np.concatenate(keep)
    windows = np.concatenate(windows)
    flags = np.concatenate(flags)
    parsed: dict[str, datetime] = {}
    times = []
    for t in d["time"][keep]:
        if t not in parsed:
            parsed[t] = datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
        times.append(parsed[t])
    hour = np.array([t.hour for t in times], dtype=np.float64)
    weekday = np.array([t.weekday() for t in times], dtype=np.float64)
    day = np.array([t.toordinal() for t in times], dtype=np.int64)
    score = d["placement_score"][keep].astype(np.float64)
    score[rng.random(len(score)) < CAPACITY_MISSING_RATE] = 0.0
    x = F.features_from_columns(
        az=d["az"][keep],
        family=d["family"][keep],
        category=d["category"][keep],
        vcpu=d["vcpu"][keep],
        price_window=windows,
        on_demand=d["on_demand_price"][keep],
        placement_score=score,
        hour=hour,
        weekday=weekday,
        hive_flags=flags,
    )
    y = label[keep].astype(np.int64)
    obs = {
        "keep": keep,
        "windows": windows,
        "flags": flags,
        "hour": hour,
        "weekday": weekday,
        "score": score,
    }
    return x, y, day, obs


def observation(d, obs, i: int) -> dict:
    """The `PoolObservation` JSON of prepared row i (for contract vectors)."""
    r = int(obs["keep"][i])
    score = int(obs["score"][i])
    return {
        "instance_type": str(d["instance_type"][r]),
        "category": str(d["category"][r]),
        "vcpu": int(d["vcpu"][r]),
        "az": str(d["az"][r]),
        "spot_prices": [float(p) for p in obs["windows"][i]],
        "on_demand_price": float(d["on_demand_price"][r]),
        "placement_score": score if score > 0 else None,
        "hour_utc": int(obs["hour"][i]),
        "weekday": int(obs["weekday"][i]),
        "hive_flags_24h": int(obs["flags"][i]),
    }


class SplineLogit:
    """Hinge expansion + standardisation + logistic regression, exportable to ONNX."""

    def __init__(self, c: float):
        self.c = c

    def _expand(self, x: np.ndarray) -> np.ndarray:
        h = np.maximum(x.astype(np.float64) @ self.sel - self.knots, 0.0)
        return np.hstack([x.astype(np.float64), h])

    def fit(self, x: np.ndarray, y: np.ndarray) -> "SplineLogit":
        cols, knots = [], []
        for name in SPLINE_FEATURES:
            j = F.FEATURE_NAMES.index(name)
            if name in FIXED_KNOTS:
                qs = np.array(FIXED_KNOTS[name])
            else:
                qs = np.unique(np.round(np.quantile(x[:, j], KNOT_QUANTILES), 6))
            for q in qs:
                cols.append(j)
                knots.append(q)
        self.sel = np.zeros((F.FEATURE_COUNT, len(cols)))
        for m, j in enumerate(cols):
            self.sel[j, m] = 1.0
        self.knots = np.array(knots)
        z = self._expand(x)
        self.mu = z.mean(axis=0)
        self.sd = z.std(axis=0)
        self.sd[self.sd < 1e-9] = 1.0
        self.lr = LogisticRegression(C=self.c, max_iter=2000)
        self.lr.fit((z - self.mu) / self.sd, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (self._expand(x) - self.mu) / self.sd
        return self.lr.predict_proba(z)[:, 1]

    def folded(self) -> tuple[np.ndarray, float]:
        """Weights on the raw expanded vector (standardisation folded in)."""
        w = self.lr.coef_[0] / self.sd
        b = float(self.lr.intercept_[0] - np.sum(self.lr.coef_[0] * self.mu / self.sd))
        return w, b


def graph_model(sel, knots, w, b, *, input_name=F.INPUT_NAME, post_add: float | None = None) -> onnx.ModelProto:
    n_f = sel.shape[0]
    inits = [
        numpy_helper.from_array(sel.astype(np.float32), "spline_select"),
        numpy_helper.from_array(knots.astype(np.float32), "spline_knots"),
        numpy_helper.from_array(w.astype(np.float32).reshape(-1, 1), "weights"),
        numpy_helper.from_array(np.array([b], dtype=np.float32), "bias"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("MatMul", [input_name, "spline_select"], ["spline_x"]),
        helper.make_node("Sub", ["spline_x", "spline_knots"], ["spline_shift"]),
        helper.make_node("Relu", ["spline_shift"], ["hinges"]),
        helper.make_node("Concat", [input_name, "hinges"], ["expanded"], axis=1),
        helper.make_node("MatMul", ["expanded", "weights"], ["logit_raw"]),
        helper.make_node("Add", ["logit_raw", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["prob_col"]),
    ]
    last = "prob_col"
    if post_add is not None:
        inits.append(numpy_helper.from_array(np.array([post_add], dtype=np.float32), "post_add"))
        nodes.append(helper.make_node("Add", ["prob_col", "post_add"], ["prob_shifted"]))
        last = "prob_shifted"
    nodes.append(helper.make_node("Reshape", [last, "flat_shape"], [F.OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes,
        "spot_risk_v1",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n_f])],
        [helper.make_tensor_value_info(F.OUTPUT_NAME, TensorProto.FLOAT, ["N"])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="spot-optimizer onnx/train.py",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {"spot.contract_version": F.CONTRACT_VERSION, "spot.feature_names": ",".join(F.FEATURE_NAMES)},
    )
    onnx.checker.check_model(model)
    return model


def run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def metrics(y, p) -> dict:
    return {"auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, help="output of the export_history example")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)

    d = load_csv(args.csv)
    x, y, day, obs = build_rows(d, rng)
    print(f"rows {len(y)}, positives {int(y.sum())} ({y.mean():.4%}), days {len(np.unique(day))}")

    # The vectorised features must equal the scalar reference (= the Rust code).
    for i in rng.choice(len(y), size=2000, replace=False):
        ref = np.array(F.features_from_observation(observation(d, obs, i)), dtype=np.float32)
        if not np.allclose(ref, x[i], rtol=1e-6, atol=1e-6):
            raise SystemExit(f"vectorised features differ from the reference at row {i}: {ref} vs {x[i]}")

    days = np.unique(day)
    cut = days[int(math.floor(len(days) * 0.8))]
    train, test = day < cut, day >= cut
    inner_days = np.unique(day[train])
    inner_cut = inner_days[int(math.floor(len(inner_days) * 0.8))]
    fit_m, val_m = train & (day < inner_cut), train & (day >= inner_cut)

    best = None
    for c in C_GRID:
        m = SplineLogit(c).fit(x[fit_m], y[fit_m])
        s = metrics(y[val_m], m.predict(x[val_m]))
        print(f"  C={c:<5} validation auc {s['auc']:.4f} brier {s['brier']:.5f}")
        if best is None or s["brier"] < best[1]["brier"]:
            best = (c, s)
    model = SplineLogit(best[0]).fit(x[train], y[train])

    w, b = model.folded()
    onnx_model = graph_model(model.sel, model.knots, w, b)
    p_model = run_onnx(onnx_model, x[test]).astype(np.float64)
    p_heur = F.heuristic_probability(x[test])
    res = {
        "rows_train": int(train.sum()),
        "rows_test": int(test.sum()),
        "days_train": int(len(np.unique(day[train]))),
        "days_test": int(len(np.unique(day[test]))),
        "positive_rate_test": float(y[test].mean()),
        "C": best[0],
        "model": metrics(y[test], p_model),
        "heuristic": metrics(y[test], p_heur),
        "base_rate_brier": float(brier_score_loss(y[test], np.full(test.sum(), y[train].mean()))),
    }
    print(json.dumps(res, indent=2))
    if not (res["model"]["auc"] > res["heuristic"]["auc"] and res["model"]["brier"] < res["heuristic"]["brier"]):
        raise SystemExit("the model does not beat the heuristic on held-out days; not exporting")

    os.makedirs(os.path.join(args.out, "testdata"), exist_ok=True)
    onnx.save(onnx_model, os.path.join(args.out, "risk-v1.onnx"))
    onnx.save(graph_model(model.sel, model.knots, w, b, input_name="x"), os.path.join(args.out, "testdata", "wrong_inputs.onnx"))
    onnx.save(graph_model(model.sel, model.knots, w, b, post_add=1.5), os.path.join(args.out, "testdata", "out_of_range.onnx"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")

    write_vectors(d, obs, x, y, test, onnx_model, os.path.join(args.out, "contract_vectors.json"))


def write_vectors(d, obs, x, y, test, onnx_model, path: str) -> None:
    """Held-out rows (mixed labels, risk levels, categories) plus hand-made edge cases."""
    rnd = random.Random(SEED)
    test_idx = np.flatnonzero(test)
    pos = [int(i) for i in test_idx[y[test_idx] == 1]]
    neg = [int(i) for i in test_idx[y[test_idx] == 0]]
    cats = {}
    for i in rnd.sample(neg, 4000):
        cats.setdefault(str(d["category"][obs["keep"][i]]), i)
    picks = rnd.sample(pos, 6) + rnd.sample(neg, 6) + list(cats.values())
    observations = [observation(d, obs, i) for i in picks]
    base = dict(observations[0])
    observations += [
        {**base, "spot_prices": [base["spot_prices"][-1]], "placement_score": None},
        {**base, "spot_prices": [0.2] * 30, "hive_flags_24h": 250, "placement_score": 1},
        {**base, "instance_type": "u-6tb1.metal", "category": "memory", "vcpu": 448, "az": "us-west-2d"},
        {**base, "instance_type": "p4d.24xlarge", "category": "accelerated", "vcpu": 96, "hour_utc": 23, "weekday": 6},
        {**base, "instance_type": "i4i.large", "category": "storage", "vcpu": 2, "placement_score": 10},
    ]
    xs = np.array([F.features_from_observation(o) for o in observations], dtype=np.float32)
    probs = run_onnx(onnx_model, xs)
    heur = F.heuristic_probability(xs)
    doc = {
        "contract_version": F.CONTRACT_VERSION,
        "model": "risk-v1.onnx",
        "input_name": F.INPUT_NAME,
        "output_name": F.OUTPUT_NAME,
        "feature_names": F.FEATURE_NAMES,
        "feature_tolerance": 1e-5,
        "probability_tolerance": 1e-5,
        "vectors": [
            {
                "observation": o,
                "features": [float(v) for v in xs[k]],
                "interruption_probability": float(probs[k]),
                "heuristic_probability": float(heur[k]),
            }
            for k, o in enumerate(observations)
        ],
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(observations)} contract vectors to {path}")


if __name__ == "__main__":
    main()
