"""Checks that the Python pieces score exactly as isolake and scikit-learn do.

On the shared data sets (cardio, breastw):

(a) scikit-learn ``IsolationForest`` (fixed ``random_state``) → ``sklearn_to_isolake`` →
    scored by ``isolake-score`` and by ``isolake_pyfunc``, against ``-score_samples`` and
    ``predict == -1``; on the data, on rows set exactly at root split thresholds (where the
    float32 threshold mapping matters) and on rows with NaN / null / infinite features;
(b) models trained by ``isolake-train`` (classic, feature-subsampled, deeper than 8 levels,
    extended) scored by ``isolake-score`` and by ``isolake_pyfunc``, on the data and on the
    rows with gaps;
(c) one model through MLflow itself (``mlflow.pyfunc.save_model`` / ``load_model``), when
    mlflow is importable, and the pyfunc's speed on 100k rows.

Prints the largest absolute difference of every comparison and exits 1 if one exceeds
``TOLERANCE`` or any flag or unscored row differs. Binaries: ``$ISOLAKE_BIN`` (default
``~/.cache/isolake/target/debug``); data: ``$ISOLAKE_DATASETS`` (default ``shared/datasets``
beside the repository).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.ensemble import IsolationForest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import isolake_pyfunc  # noqa: E402
import sklearn_to_isolake  # noqa: E402

TOLERANCE = 1e-12
BIN = Path(os.environ.get("ISOLAKE_BIN", Path.home() / ".cache/isolake/target/debug"))
DATASETS = Path(os.environ.get("ISOLAKE_DATASETS", HERE.parents[2] / "shared" / "datasets"))
SKLEARN_CONFIGS = {
    "default": {},
    "contamination=0.1,max_features=0.5": {"contamination": 0.1, "max_features": 0.5},
    "max_samples=0.3,bootstrap": {"max_samples": 0.3, "bootstrap": True, "contamination": 0.05},
}
TRAIN_CONFIGS = {
    "classic": [],
    "classic,max_features=0.5,auto": ["--max-features", "0.5", "--contamination", "auto"],
    "classic,max_samples=1000 (depth 10)": ["--max-samples", "1000"],
    "extended,level=3": ["--extension-level", "3"],
}


class Report:
    """Collects comparisons and prints one line each."""

    def __init__(self):
        self.failed = 0

    def line(self, case: str, what: str, a, b, flags_a=None, flags_b=None):
        """Compares two score vectors (NaN = unscored) and, optionally, their flags."""
        a, b = np.asarray(a, float), np.asarray(b, float)
        same_gaps = np.array_equal(np.isnan(a), np.isnan(b))
        both = ~np.isnan(a) & ~np.isnan(b)
        diff = float(np.max(np.abs(a[both] - b[both]), initial=0.0))
        flips = 0
        if flags_a is not None:
            flips = int(np.sum(np.asarray(flags_a)[both] != np.asarray(flags_b)[both]))
        ok = same_gaps and diff <= TOLERANCE and flips == 0
        self.failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case:<48} {what:<38} max|Δ| {diff:.3e}  "
              f"flags differ {flips}  unscored {int(np.isnan(a).sum())}"
              + ("" if same_gaps else "  UNSCORED ROWS DIFFER"))


def load_dataset(name: str) -> pd.DataFrame:
    """The data set's feature columns as float64 (the label is for evaluation only)."""
    return pd.read_csv(DATASETS / f"{name}.csv").drop(columns="label").astype(np.float64)


def write_parquet(values: np.ndarray, names, path: Path, nulls=None) -> Path:
    """Writes exact float64 values; NaN stays NaN (not null), ``nulls`` marks real nulls."""
    columns = {
        name: pa.array(values[:, j], mask=None if nulls is None else nulls[:, j])
        for j, name in enumerate(names)
    }
    pq.write_table(pa.table(columns), path)
    return path


def with_gaps(x: np.ndarray, seed: int) -> tuple:
    """A copy of ``x`` with NaN, +inf, -inf and null cells on some rows (every fifth row has
    one), plus the null mask: the rows isolake must leave unscored."""
    rng = np.random.default_rng(seed)
    x = x.copy()
    nulls = np.zeros(x.shape, dtype=bool)
    rows = np.arange(0, x.shape[0], 5)
    cols = rng.integers(0, x.shape[1], rows.size)
    kinds = rows // 5 % 4
    x[rows[kinds == 0], cols[kinds == 0]] = np.nan
    x[rows[kinds == 1], cols[kinds == 1]] = np.inf
    x[rows[kinds == 2], cols[kinds == 2]] = -np.inf
    nulls[rows[kinds == 3], cols[kinds == 3]] = True
    x[nulls] = np.nan
    return x, nulls


def root_probes(forest, x: np.ndarray, seed: int) -> np.ndarray:
    """Rows whose root-split feature sits on the threshold, one float64 step from it, and on
    the float32 rounding boundaries around it: where float64 and float32 routing differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for est, feats in zip(forest.estimators_, forest.estimators_features_):
        if est.tree_.children_left[0] == -1:
            continue
        local = int(est.tree_.feature[0])
        f = local if forest._max_features == x.shape[1] else int(feats[local])
        t = float(est.tree_.threshold[0])
        cut = float(sklearn_to_isolake.float32_cut(np.array([t]))[0])
        u = float(np.float32(t))
        for v in (t, np.nextafter(t, np.inf), u, np.nextafter(np.float32(u), np.float32(np.inf)),
                  cut, np.nextafter(cut, np.inf)):
            row = x[rng.integers(x.shape[0])].copy()
            row[f] = v
            rows.append(row)
    return np.array(rows)


def run(cmd) -> str:
    """Runs a binary, failing loudly with its stderr."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def isolake_score(model: str, data: Path, work: Path, registry: Path | None = None) -> tuple:
    """``(anomaly_score, is_anomaly)`` from the isolake-score binary (NaN / False when null)."""
    out = work / f"scored-{time.monotonic_ns()}.parquet"
    cmd = [BIN / "isolake-score", "--model", model, "--input", data, "--output", out,
           "--cache-dir", work / "cache", "--quiet"]
    if registry is not None:
        cmd += ["--registry", registry]
    run(cmd)
    table = pq.read_table(out)
    scores = table["anomaly_score"].to_numpy(zero_copy_only=False).astype(float)
    flags = np.array([bool(v) for v in table["is_anomaly"].to_pylist()])
    return scores, flags


def pyfunc_predict(model, values: np.ndarray, names, nulls=None) -> tuple:
    """Scores through ``predict`` on a DataFrame; null cells become pandas NA in a nullable
    column, so that path is exercised too."""
    frame = pd.DataFrame(values, columns=names)
    if nulls is not None and nulls.any():
        name = names[int(np.flatnonzero(nulls.any(axis=0))[0])]
        frame[name] = frame[name].astype("Float64")  # NaN becomes NA, infinities stay
    out = model.predict(frame)
    columns = ["anomaly_score", "is_anomaly"]
    if list(out.columns) != columns or out.anomaly_score.dtype != np.float64:
        raise AssertionError(f"unexpected predict output {out.dtypes.to_dict()}")
    if not out.is_anomaly[out.anomaly_score.isna()].isna().all():
        raise AssertionError("an unscored row has a non-null is_anomaly")
    return out.anomaly_score.to_numpy(), out.is_anomaly.fillna(False).to_numpy(bool)


def sklearn_cases(report: Report, name: str, work: Path) -> None:
    """(a): converted scikit-learn forests against scikit-learn itself."""
    frame = load_dataset(name)
    names, x = list(frame.columns), frame.to_numpy()
    for k, (label, config) in enumerate(SKLEARN_CONFIGS.items()):
        forest = IsolationForest(n_estimators=100, random_state=42, **config).fit(x)
        artifact = work / f"{name}-sklearn-{k}.isolake"
        artifact.write_bytes(sklearn_to_isolake.convert(forest, names))
        model = isolake_pyfunc.load(artifact)
        inputs = {"data": x, "root-threshold probes": root_probes(forest, x, seed=1)}
        for what, values in inputs.items():
            data = write_parquet(values, names, work / f"{artifact.stem}-{what.split()[0]}.parquet")
            expected = -forest.score_samples(values)
            flagged = forest.predict(values) == -1
            case = f"sklearn {name} {label} / {what}"
            got, flags = isolake_score(str(artifact), data, work)
            report.line(case, "isolake-score vs sklearn", got, expected, flags, flagged)
            py, py_flags = pyfunc_predict(model, values, names)
            report.line(case, "pyfunc vs sklearn", py, expected, py_flags, flagged)
            report.line(case, "pyfunc vs isolake-score", py, got, py_flags, flags)
        gappy, nulls = with_gaps(x, seed=2)
        data = write_parquet(gappy, names, work / f"{artifact.stem}-gaps.parquet", nulls)
        got, flags = isolake_score(str(artifact), data, work)
        py, py_flags = pyfunc_predict(model, gappy, names, nulls)
        case = f"sklearn {name} {label} / NaN,inf,null rows"
        report.line(case, "pyfunc vs isolake-score", py, got, py_flags, flags)
        finite = np.isfinite(gappy).all(axis=1)
        report.line(case, "isolake-score vs sklearn (finite rows)", got[finite],
                    -forest.score_samples(gappy[finite]), flags[finite],
                    forest.predict(gappy[finite]) == -1)


def train_cases(report: Report, name: str, work: Path) -> list:
    """(b): isolake-trained forests, isolake-score against the pyfunc; returns the artifact
    directories (for the MLflow case)."""
    frame = load_dataset(name)
    names, x = list(frame.columns), frame.to_numpy()
    data = write_parquet(x, names, work / f"{name}.parquet")
    gappy, nulls = with_gaps(x, seed=3)
    gaps = write_parquet(gappy, names, work / f"{name}-gaps.parquet", nulls)
    registry = work / "registry"
    artifacts = []
    for label, flags in TRAIN_CONFIGS.items():
        model_name = f"{name}-{len(artifacts)}"
        uri = run([BIN / "isolake-train", "--input", data, "--features", ",".join(names),
                   "--registry", registry, "--model-name", model_name, "--seed", "7",
                   "--quiet", *flags])
        version = registry / "models" / model_name / "versions" / "1" / "version.json"
        source = json.loads(version.read_text())["source"]
        artifacts.append(registry / source)
        model = isolake_pyfunc.load(registry / source)
        for what, path, values, mask in (("data", data, x, None),
                                         ("NaN,inf,null rows", gaps, gappy, nulls)):
            got, got_flags = isolake_score(uri, path, work, registry)
            py, py_flags = pyfunc_predict(model, values, names, mask)
            report.line(f"isolake-train {name} {label} / {what}", "pyfunc vs isolake-score",
                        py, got, py_flags, got_flags)
    return artifacts


def refusals(report: Report, artifact_dir: Path) -> None:
    """A corrupted payload and a frame lacking a feature must raise ValueError."""
    artifact = next(artifact_dir.glob("*.isolake"))
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    model = isolake_pyfunc.load(artifact_dir)
    for what, attempt in (
        ("flipped payload bit", lambda: isolake_pyfunc.from_bytes(bytes(data))),
        ("missing feature column", lambda: model.predict(pd.DataFrame({"x": [1.0]}))),
    ):
        try:
            attempt()
            refused = False
        except ValueError:
            refused = True
        report.failed += not refused
        print(f"{'ok  ' if refused else 'FAIL'} refuses: {what}")


def mlflow_case(report: Report, artifact_dir: Path, work: Path) -> None:
    """(c): the loader module through MLflow's own save/load, against the direct loader."""
    try:
        import mlflow.pyfunc
    except ImportError:
        print("skip  MLflow round trip: mlflow is not importable")
        return
    path = work / "mlflow-model"
    mlflow.pyfunc.save_model(path, loader_module="isolake_pyfunc", data_path=str(artifact_dir),
                             code_paths=[str(HERE / "isolake_pyfunc.py")],
                             pip_requirements=["numpy", "pandas"])
    direct = isolake_pyfunc.load(artifact_dir)
    frame = pd.DataFrame(np.random.default_rng(4).normal(size=(500, len(direct.feature_names))),
                         columns=direct.feature_names)
    via = mlflow.pyfunc.load_model(str(path)).predict(frame)
    own = direct.predict(frame)
    report.line("MLflow round trip", "mlflow predict vs load()", via.anomaly_score,
                own.anomaly_score, via.is_anomaly.to_numpy(bool), own.is_anomaly.to_numpy(bool))


def speed(artifact_dir: Path) -> None:
    """Rows per second of ``predict`` on 100k rows (data set rows repeated)."""
    model = isolake_pyfunc.load(artifact_dir)
    frame = load_dataset("cardio")
    big = frame.iloc[np.arange(100_000) % len(frame)].reset_index(drop=True)
    start = time.perf_counter()
    model.predict(big)
    seconds = time.perf_counter() - start
    print(f"speed pyfunc predict, 100000 rows x {len(model.trees)} trees: {seconds:.2f} s")


def main() -> int:
    report = Report()
    with tempfile.TemporaryDirectory(prefix="isolake-equivalence-") as tmp:
        work = Path(tmp)
        artifacts = {}
        for name in ("cardio", "breastw"):
            sklearn_cases(report, name, work)
            artifacts[name] = train_cases(report, name, work)
        refusals(report, artifacts["cardio"][0])
        mlflow_case(report, artifacts["cardio"][-1], work)
        speed(artifacts["cardio"][0])
    print("all equivalent" if report.failed == 0 else f"{report.failed} comparison(s) FAILED")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
