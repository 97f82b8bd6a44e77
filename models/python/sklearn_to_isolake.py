"""Converts a fitted scikit-learn ``IsolationForest`` into an isolake model artifact.

Teams that already have a scikit-learn model can then score it with ``isolake-score``, the
pipeline and the MLflow pyfunc loader, and get scikit-learn's own ``score_samples`` (as
``-anomaly_score``) and ``predict == -1`` (as ``is_anomaly``) for every finite row.

What the mapping has to bridge (see ``models/src/artifact.rs`` and ``forest/``):

- scikit-learn casts rows to float32 before comparing ``x <= threshold``; isolake compares
  the float64 value. Each threshold becomes the largest float64 ``t'`` with
  ``x <= t'  ⇔  float32(x) <= t``, so both route every finite row identically.
- With ``max_features`` below the feature count a tree's feature indices are local to its
  ``estimators_features_``; isolake stores global indices.
- scikit-learn numbers nodes depth-first; isolake needs siblings adjacent (right = left + 1)
  and children after their parent, so nodes are renumbered breadth-first.
- ``offset_`` is isolake's ``offset``: both decide ``score_samples - offset < 0``.

Not bridged: scikit-learn scores rows holding NaN (its trees route missing values);
isolake does not score them (null score and flag).

CLI::

    python sklearn_to_isolake.py --model forest.joblib --features a,b,c --out model.isolake
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \\
        python sklearn_to_isolake.py --model models:/fraud-sklearn/1 --out model.isolake
"""

from __future__ import annotations

import argparse
import hashlib
import json
import numbers
import pickle
import struct
import sys
import warnings
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MAGIC_LINE = b"ISOLAKE-FOREST 1\n"
FORMAT_VERSION = 1
FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_cut(thresholds: np.ndarray) -> np.ndarray:
    """Per threshold ``t``, the largest float64 ``t'`` such that, for every float64 ``x``,
    ``x <= t'`` exactly when ``float32(x) <= t`` (scikit-learn's comparison).

    float32 rounding is monotone, so the rows going left are those rounding to at most
    ``u``, the largest float32 ``<= t``: every ``x`` below the midpoint between ``u`` and the
    next float32, plus the midpoint itself when it rounds (ties-to-even) down to ``u``.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if not (np.isfinite(t).all() and (np.abs(t) <= FLOAT32_MAX).all()):
        raise ValueError("a split threshold is not a finite float32-range value")
    with np.errstate(over="ignore"):
        u = t.astype(np.float32)
        u = np.where(u.astype(np.float64) > t, np.nextafter(u, np.float32(-np.inf)), u)
        above = np.nextafter(u, np.float32(np.inf)).astype(np.float64)
        above[np.isinf(above)] = 2.0**128  # past FLT_MAX, rounding goes to +inf at 2^128
        mid = (u.astype(np.float64) + above) / 2.0  # exact: float32 values have 24 bits
        return np.where(mid.astype(np.float32) == u, mid, np.nextafter(mid, -np.inf))


def _tree_arrays(estimator, features_map) -> tuple:
    """One sklearn tree as isolake's node arrays (child, samples, features, coefs,
    thresholds), renumbered breadth-first so siblings are adjacent and follow their parent."""
    tree = estimator.tree_
    left, right = tree.children_left, tree.children_right
    order = [0]  # sklearn node of each isolake node
    child = [0]
    queue = deque([0])
    while queue:
        new = queue.popleft()
        old = order[new]
        if left[old] != -1:
            child[new] = len(order)
            for kid in (left[old], right[old]):
                queue.append(len(order))
                order.append(int(kid))
                child.append(0)
    order = np.asarray(order)
    child = np.asarray(child, dtype=np.uint32)
    internal = child != 0
    features = np.zeros(len(order), dtype=np.uint32)
    features[internal] = features_map[tree.feature[order[internal]]]
    thresholds = np.zeros(len(order))
    thresholds[internal] = float32_cut(tree.threshold[order[internal]])
    coefs = internal.astype(np.float64)  # classic splits: 1 on splits, 0 on leaves as isolake
    samples = tree.n_node_samples[order].astype(np.uint32)
    return child, samples, features, coefs, thresholds


def _payload(forest, n_features: int) -> bytes:
    """Little-endian payload: ``u32 n_trees, u32 terms``, then per tree ``u32 n_nodes``,
    children, sample counts, features (u32), coefficients and thresholds (f64)."""
    subsampled = forest._max_features != n_features  # as in scikit-learn's score_samples
    parts = [struct.pack("<II", len(forest.estimators_), 1)]
    for estimator, feats in zip(forest.estimators_, forest.estimators_features_):
        features_map = np.asarray(feats) if subsampled else np.arange(n_features)
        child, samples, features, coefs, thresholds = _tree_arrays(estimator, features_map)
        parts.append(struct.pack("<I", len(child)))
        for array, dtype in ((child, "<u4"), (samples, "<u4"), (features, "<u4"),
                             (coefs, "<f8"), (thresholds, "<f8")):
            parts.append(np.ascontiguousarray(array, dtype=dtype).tobytes())
    return b"".join(parts)


def _hyperparameters(forest) -> dict:
    """isolake's ``IsolationForestValidParams`` in its serde form."""
    ms, mf = forest.max_samples, forest.max_features
    if isinstance(ms, str):
        max_samples = "auto"
    elif isinstance(ms, numbers.Integral):
        max_samples = {"count": int(ms)}
    else:
        max_samples = {"fraction": float(ms)}
    if isinstance(mf, numbers.Integral):
        max_features = {"count": int(mf)}
    else:
        max_features = {"fraction": float(mf)}
    c = forest.contamination
    contamination = "auto" if isinstance(c, str) else {"fraction": float(c)}
    seed = forest.random_state
    if not isinstance(seed, numbers.Integral):
        # isolake requires a seed; it cannot regrow scikit-learn's trees anyway.
        warnings.warn("random_state is not an int: the artifact records seed 0")
        seed = 0
    return {
        "n_estimators": len(forest.estimators_),
        "max_samples": max_samples,
        "max_features": max_features,
        "bootstrap": bool(forest.bootstrap),
        "contamination": contamination,
        "seed": int(seed),
        "extension_level": 0,
    }


def _check(forest, feature_names, training_rows: int) -> None:
    """Refuses what isolake's loader would refuse, with the reason in scikit-learn's terms."""
    from sklearn.ensemble import IsolationForest

    if not isinstance(forest, IsolationForest) or not hasattr(forest, "estimators_"):
        raise ValueError("expected a fitted sklearn.ensemble.IsolationForest")
    if len(feature_names) != forest.n_features_in_:
        raise ValueError(
            f"{len(feature_names)} feature names for a model of {forest.n_features_in_} features"
        )
    fitted_names = getattr(forest, "feature_names_in_", None)
    if fitted_names is not None and list(fitted_names) != list(feature_names):
        raise ValueError(
            f"the model was fitted on columns {list(fitted_names)}, not {feature_names}"
        )
    psi = forest._max_samples
    if psi < 2 or training_rows < 2:
        raise ValueError(f"isolake needs at least 2 rows per tree and in training (ψ = {psi})")
    if not forest.bootstrap and any(e.tree_.n_node_samples[0] != psi for e in forest.estimators_):
        raise ValueError(
            "a tree's root does not hold max_samples_ rows (fitted with sample_weight?)"
        )


def _resolved_psi(max_samples, n: int) -> int:
    """ψ as isolake's ``resolve_max_samples`` derives it (checked against the header)."""
    if max_samples == "auto":
        return min(256, n)
    if "count" in max_samples:
        return min(max_samples["count"], n)
    return int(np.floor(max_samples["fraction"] * n))


def convert(forest, feature_names, training_rows: int | None = None) -> bytes:
    """The isolake artifact of a fitted ``IsolationForest`` over ``feature_names``.

    ``training_rows`` defaults to the row count scikit-learn recorded at fit; isolake checks
    that ``max_samples`` of it gives the model's ψ.
    """
    feature_names = [str(f) for f in feature_names]
    n = int(training_rows if training_rows is not None else forest._n_samples)
    _check(forest, feature_names, n)
    params = _hyperparameters(forest)
    if _resolved_psi(params["max_samples"], n) != forest._max_samples:
        raise ValueError(
            f"max_samples={forest.max_samples!r} of {n} training rows does not give the model's "
            f"{forest._max_samples} rows per tree: pass the real --training-rows"
        )
    payload = _payload(forest, len(feature_names))
    import sklearn

    header = {
        "format_version": FORMAT_VERSION,
        "feature_names": feature_names,
        "hyperparameters": params,
        "samples_per_tree": int(forest._max_samples),
        "features_per_tree": int(forest._max_features),
        "offset": float(forest.offset_),
        "training_rows": n,
        "training_data": None,
        "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "crate_version": f"scikit-learn {sklearn.__version__}",
        "payload_len": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    line = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return MAGIC_LINE + line + b"\n" + payload


def _load_estimator(source: str):
    """Reads the estimator: an MLflow model URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``runs:/RUN/PATH``; loaded with ``mlflow.sklearn``, tracking URI from ``MLFLOW_TRACKING_URI``)
    or a pickled or joblib-dumped file. All of them unpickle, which executes code: trusted
    models only."""
    if "://" not in source and ":/" in source:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(source)
    path = Path(source)
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    with path.open("rb") as f:
        return pickle.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True,
                        help="fitted IsolationForest: a .pkl/.joblib file or an MLflow sklearn "
                        "model URI (models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN/PATH)")
    parser.add_argument("--features", help="feature names, comma-separated, in fit order "
                        "(default: the model's feature_names_in_)")
    parser.add_argument("--out", required=True, type=Path, help="artifact to write (model.isolake)")
    parser.add_argument("--training-rows", type=int, help="rows the model was fitted on "
                        "(default: as recorded by scikit-learn)")
    args = parser.parse_args(argv)
    forest = _load_estimator(args.model)
    if args.features:
        names = args.features.split(",")
    elif getattr(forest, "feature_names_in_", None) is not None:
        names = list(forest.feature_names_in_)
    else:
        parser.error("--features is needed: the model was fitted without column names")
    try:
        data = convert(forest, names, args.training_rows)
    except ValueError as e:
        print(f"sklearn_to_isolake: error: {e}", file=sys.stderr)
        return 2
    args.out.write_bytes(data)
    print(f"sklearn_to_isolake: wrote {args.out} ({len(forest.estimators_)} trees, "
          f"{len(names)} features, offset {forest.offset_})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
