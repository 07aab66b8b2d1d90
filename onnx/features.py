"""Contract v1 feature extraction (see CONTRACT.md), the Python twin of `engine::risk::features`.

Two implementations live here on purpose:

* `features_from_observation` is the scalar reference: plain Python floats in exactly the
  order of operations of the Rust code (sequential sums, no numpy), so the contract vectors
  it produces pin the Rust implementation to ~1e-7.
* `features_from_columns` is the vectorised version the trainer uses on ~1M rows; train.py
  checks it against the scalar reference on sampled rows before training.

Keep all three (Rust, scalar, vectorised) in step: a change here is a contract change.
"""

from __future__ import annotations

import math

import numpy as np

CONTRACT_VERSION = "v1"
INPUT_NAME = "features"
OUTPUT_NAME = "interruption_probability"
HISTORY_HOURS = 24
HIVE_FLAG_CAP = 100
CAPACITY_MISSING_VALUE = 0.5
CATEGORIES = ["general", "compute", "memory", "burstable", "gpu"]

FEATURE_NAMES = [
    "az_index",
    "family_hash",
    "family_generation",
    "log_spot_price_last",
    "log_spot_price_mean_24h",
    "price_ratio_last",
    "price_ratio_mean_24h",
    "price_volatility_24h",
    "price_trend_24h",
    "capacity_signal",
    "capacity_signal_missing",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
    "hive_flags_24h_log1p",
    "cat_general",
    "cat_compute",
    "cat_memory",
    "cat_burstable",
    "cat_gpu",
    "vcpu_log2",
]
FEATURE_COUNT = len(FEATURE_NAMES)


def category_of(name: str) -> str | None:
    """Maps the cloud port's category names onto the contract's five one-hot slots."""
    name = name.lower()
    if name == "accelerated":
        return "gpu"
    return name if name in CATEGORIES else None


def family_of(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def family_hash(family: str) -> float:
    """FNV-1a (32-bit) of the family's UTF-8 bytes, low 16 bits scaled to [0, 1)."""
    h = 0x811C9DC5
    for b in family.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return (h & 0xFFFF) / 65536.0


def family_generation(family: str) -> float:
    """Digits right after the leading letters (`m6gd` -> 6, `u-6tb1` -> 0)."""
    i = 0
    while i < len(family) and family[i].isascii() and family[i].isalpha():
        i += 1
    j = i
    while j < len(family) and family[j].isascii() and family[j].isdigit():
        j += 1
    if j == i or j - i > 3:
        return 0.0
    return float(int(family[i:j]))


def az_index(az: str) -> float:
    c = az[-1:] if az else ""
    if c and "a" <= c <= "z":
        return float(ord(c) - ord("a"))
    return 0.0


def features_from_observation(obs: dict) -> list[float]:
    """Scalar reference implementation. `obs` has the JSON shape of `PoolObservation`."""
    prices = obs["spot_prices"][-HISTORY_HOURS:]
    if not prices:
        raise ValueError("spot_prices must not be empty")
    od = float(obs["on_demand_price"])
    n = float(len(prices))
    total = 0.0
    for p in prices:
        total += p
    mean = total / n
    sq = 0.0
    for p in prices:
        d = p - mean
        sq += d * d
    std = math.sqrt(sq / n)
    last = prices[-1]
    score = obs.get("placement_score")
    if score is None:
        cap, missing = CAPACITY_MISSING_VALUE, 1.0
    else:
        cap, missing = score / 10.0, 0.0
    hour = float(obs["hour_utc"])
    dow = float(obs["weekday"])
    flags = min(int(obs["hive_flags_24h"]), HIVE_FLAG_CAP)
    family = family_of(obs["instance_type"])
    cat = category_of(obs["category"])
    tau = 2.0 * math.pi
    values = [
        az_index(obs["az"]),
        family_hash(family),
        family_generation(family),
        math.log(last),
        math.log(mean),
        last / od,
        mean / od,
        std / mean,
        last / mean - 1.0,
        cap,
        missing,
        math.sin(tau * hour / 24.0),
        math.cos(tau * hour / 24.0),
        math.sin(tau * dow / 7.0),
        math.cos(tau * dow / 7.0),
        math.log1p(float(flags)),
    ]
    values += [1.0 if cat == c else 0.0 for c in CATEGORIES]
    values.append(math.log2(float(obs["vcpu"])))
    assert len(values) == FEATURE_COUNT
    return values


def features_from_columns(
    *,
    az: np.ndarray,
    family: np.ndarray,
    category: np.ndarray,
    vcpu: np.ndarray,
    price_window: np.ndarray,
    on_demand: np.ndarray,
    placement_score: np.ndarray,
    hour: np.ndarray,
    weekday: np.ndarray,
    hive_flags: np.ndarray,
) -> np.ndarray:
    """Vectorised features; `price_window` is [rows, 24] (oldest first), `placement_score`
    uses 0 for missing. Returns float32 [rows, FEATURE_COUNT]."""
    rows = price_window.shape[0]
    x = np.zeros((rows, FEATURE_COUNT), dtype=np.float64)
    x[:, 0] = [az_index(a) for a in az]
    fam_cache: dict[str, tuple[float, float]] = {}
    for i, f in enumerate(family):
        if f not in fam_cache:
            fam_cache[f] = (family_hash(f), family_generation(f))
        x[i, 1], x[i, 2] = fam_cache[f]
    last = price_window[:, -1]
    mean = price_window.mean(axis=1)
    std = np.sqrt(((price_window - mean[:, None]) ** 2).mean(axis=1))
    x[:, 3] = np.log(last)
    x[:, 4] = np.log(mean)
    x[:, 5] = last / on_demand
    x[:, 6] = mean / on_demand
    x[:, 7] = std / mean
    x[:, 8] = last / mean - 1.0
    missing = placement_score <= 0
    x[:, 9] = np.where(missing, CAPACITY_MISSING_VALUE, placement_score / 10.0)
    x[:, 10] = missing.astype(np.float64)
    tau = 2.0 * np.pi
    x[:, 11] = np.sin(tau * hour / 24.0)
    x[:, 12] = np.cos(tau * hour / 24.0)
    x[:, 13] = np.sin(tau * weekday / 7.0)
    x[:, 14] = np.cos(tau * weekday / 7.0)
    x[:, 15] = np.log1p(np.minimum(hive_flags, HIVE_FLAG_CAP).astype(np.float64))
    cats = np.array([category_of(c) or "" for c in category])
    for k, c in enumerate(CATEGORIES):
        x[:, 16 + k] = (cats == c).astype(np.float64)
    x[:, 21] = np.log2(vcpu.astype(np.float64))
    return x.astype(np.float32)


def heuristic_probability(x: np.ndarray) -> np.ndarray:
    """The static fallback of `engine::risk::HeuristicModel`, on contract feature rows.

    Expert rule, not fitted: scarcity (1 - capacity signal) dominates, cubed so healthy
    pools stay near zero; a spot price close to on-demand (the scarcity premium) and recent
    hive-mind interruption flags add risk. Without a capacity signal the price term alone
    decides. Same constants as the Rust implementation.
    """
    x = x.astype(np.float64)
    scarcity = 1.0 - x[:, 9]
    cap_term = np.where(x[:, 10] > 0.5, 0.0, 0.6 * scarcity**3)
    price_term = 0.5 * np.clip((x[:, 5] - 0.4) / 0.6, 0.0, 1.0)
    hive_term = 0.1 * np.minimum(x[:, 15] / math.log(6.0), 1.0)
    return np.clip(cap_term + price_term + hive_term, 0.0, 1.0)
