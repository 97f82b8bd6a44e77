"""MLflow pyfunc loader for isolake model artifacts, in pure Python + numpy.

A registered isolake model must be usable wherever MLflow models are (``mlflow.pyfunc``,
``mlflow models serve``, Spark UDFs) without the Rust binaries, and must give the very
scores ``isolake-score`` gives. This module reads the artifact (see
``models/src/artifact.rs``) and re-implements the scorer of ``models/src/forest``:

- a row's path length in a tree is ``depth(leaf) + c(samples(leaf))``, where
  ``c(n) = 2 (ln(n - 1) + γ) - 2 (n - 1) / n`` (``c(0) = c(1) = 0``, ``c(2) = 1``);
- a split sends a row left when ``Σ coef·x[feature] <= threshold`` (one term with
  coefficient 1 in the classic forest, ``extension_level + 1`` terms in the extended one);
- ``score_samples = -2 ** (-(Σ_trees path) / (n_trees · c(ψ)))`` (scikit-learn's sign);
- ``anomaly_score = -score_samples`` in (0, 1], higher = more anomalous, and
  ``is_anomaly = score_samples - offset < 0``;
- a row with a null, non-numeric, NaN or infinite feature is not scored: null score, null
  flag.

The order of floating-point operations is the Rust one (trees summed in order from 0.0,
one division, libm's ``pow``), so scores are bitwise those of ``isolake-score``.

Use with MLflow::

    mlflow.pyfunc.save_model("m", loader_module="isolake_pyfunc",
                             data_path="model.isolake", code_paths=["isolake_pyfunc.py"])
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"ISOLAKE-FOREST"
FORMAT_VERSION = 1
MAX_ARTIFACT_BYTES = 256 << 20
EULER_GAMMA = 0.5772156649015329
ANOMALY_SCORE = "anomaly_score"
IS_ANOMALY = "is_anomaly"
ARTIFACT_SUFFIX = ".isolake"
CHUNK_ROWS = 8192  # rows walked together: their arrays stay in cache (1M rows: ~1.5x faster)
# The Rust header struct denies unknown fields and requires all of these.
HEADER_FIELDS = frozenset(
    "format_version feature_names hyperparameters samples_per_tree features_per_tree offset "
    "training_rows training_data created_at crate_version payload_len payload_sha256".split()
)


def average_path_length(n: int) -> float:
    """``c(n)``, exactly as ``score.rs`` computes it (``math.log`` is libm's, like Rust's)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    n = float(n)
    return 2.0 * (math.log(n - 1.0) + EULER_GAMMA) - 2.0 * (n - 1.0) / n


def depth_limit(psi: int) -> int:
    """``ceil(log2(max(ψ, 2)))``: no valid tree is deeper, which bounds what a load allocates."""
    return (max(psi, 2) - 1).bit_length()


@dataclass(frozen=True)
class HeapTree:
    """One tree as a complete binary heap (root at slot 1, children of ``h`` at ``2h`` and
    ``2h + 1``), padded below shallow leaves with always-left slots (zero coefficients,
    threshold +inf), so every row walks exactly ``depth`` steps: one numpy gather per step
    for all rows at once, no per-row branching."""

    depth: int
    features: np.ndarray  # (slots, terms) intp
    coefs: np.ndarray  # (slots, terms) float64; unused for classic trees
    thresholds: np.ndarray  # (slots,) float64
    leaves: np.ndarray  # (2**depth,) float64: depth + c(samples) of the owning leaf

    def path_lengths(self, flat: np.ndarray, row_base: np.ndarray) -> np.ndarray:
        """Path length of every row; ``flat`` is the row-major matrix raveled and
        ``row_base[r] = r * n_features``."""
        h = np.ones(row_base.shape[0], dtype=np.intp)
        classic = self.features.shape[1] == 1
        for _ in range(self.depth):
            if classic:
                value = flat[row_base + self.features[h, 0]]
            else:
                # Same order as `tree::split_dot`: from 0.0, term by term.
                value = np.zeros(row_base.shape[0])
                for k in range(self.features.shape[1]):
                    value += self.coefs[h, k] * flat[row_base + self.features[h, k]]
            # `value > t` goes right, i.e. `value <= t` goes left (scikit-learn's rule).
            h = 2 * h + (value > self.thresholds[h])
        return self.leaves[h - (1 << self.depth)]


@dataclass(frozen=True)
class IsolakeModel:
    """A loaded isolake forest; ``predict`` is the MLflow pyfunc entry point."""

    header: dict
    trees: tuple
    norm: float  # n_trees · c(ψ), the score's denominator

    @property
    def feature_names(self) -> list:
        return list(self.header["feature_names"])

    @property
    def offset(self) -> float:
        return float(self.header["offset"])

    def predict(self, model_input, params=None):
        """Scores a pandas DataFrame holding (at least) the model's feature columns.

        Returns a DataFrame on the input's index with ``anomaly_score`` (float64, NaN where
        isolake-score writes null) and ``is_anomaly`` (pandas' nullable ``boolean``, NA where
        isolake-score writes null). ``params`` is accepted for MLflow and unused.
        """
        import pandas as pd

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        x = feature_matrix(frame, self.feature_names)
        anomaly, flagged = score_with_flags(self, x)
        flags = pd.array(flagged, dtype="boolean")
        flags[np.isnan(anomaly)] = pd.NA
        return pd.DataFrame({ANOMALY_SCORE: anomaly, IS_ANOMALY: flags}, index=frame.index)


def feature_matrix(frame, feature_names) -> np.ndarray:
    """The features as a float64 matrix, cast like isolake's ``FeatureMatrix::extract``
    (polars' non-strict cast to Float64): numbers and booleans as numbers, numeric strings
    parsed, anything else NaN (so the row is not scored). A missing column is an error, as
    in isolake-score: no row could be scored."""
    import pandas as pd

    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        raise ValueError(
            f"the input lacks feature column(s) {missing}; the model needs {list(feature_names)}"
        )
    columns = [
        pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for name in feature_names
    ]
    return np.column_stack(columns)


def score_with_flags(model: IsolakeModel, x) -> tuple:
    """``(anomaly_score, is_anomaly)`` per row of a 2-D array, NaN / False for rows holding a
    non-finite value (their flag is meaningless: isolake-score writes null)."""
    x = np.asarray(x, dtype=np.float64)
    width = len(model.header["feature_names"])
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"expected a 2-D array of {width} feature column(s), got shape {x.shape}")
    valid = np.isfinite(x).all(axis=1)
    rows = np.ascontiguousarray(x[valid])
    path_sum = _path_sums(model.trees, rows)
    # `-(2f64.powf(-s / norm))` per row, through libm's pow as Rust does.
    samples = np.fromiter(
        (-math.pow(2.0, v) for v in (-path_sum / model.norm).tolist()),
        dtype=np.float64,
        count=rows.shape[0],
    )
    anomaly = np.full(x.shape[0], np.nan)
    flagged = np.zeros(x.shape[0], dtype=bool)
    anomaly[valid] = -samples
    flagged[valid] = samples - model.offset < 0.0
    return anomaly, flagged


def _path_sums(trees, rows: np.ndarray) -> np.ndarray:
    """Each row's path lengths summed over the trees in order from 0.0 (Rust's order),
    ``CHUNK_ROWS`` rows at a time so a chunk's working arrays stay in cache."""
    out = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        row_base = np.arange(chunk.shape[0], dtype=np.intp) * rows.shape[1]
        acc = np.zeros(chunk.shape[0])
        for tree in trees:
            acc += tree.path_lengths(chunk.ravel(), row_base)
        out[start : start + chunk.shape[0]] = acc
    return out


def score(model: IsolakeModel, x) -> np.ndarray:
    """isolake-score's ``anomaly_score`` (``-score_samples``) of each row of a 2-D array of
    the model's features in order; NaN for rows isolake-score leaves unscored."""
    return score_with_flags(model, x)[0]


def load(path) -> IsolakeModel:
    """Loads an artifact file, or the single ``*.isolake`` file of a directory."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.name.endswith(ARTIFACT_SUFFIX))
        if len(found) != 1:
            raise ValueError(
                f"{path} holds {len(found)} *{ARTIFACT_SUFFIX} files; expected exactly one"
            )
        path = found[0]
    if path.stat().st_size > MAX_ARTIFACT_BYTES:
        raise ValueError(f"{path} is larger than {MAX_ARTIFACT_BYTES} bytes")
    return from_bytes(path.read_bytes())


def _load_pyfunc(data_path):
    """MLflow's loader-module hook: ``data_path`` is the artifact or its directory."""
    return load(data_path)


def from_bytes(data: bytes) -> IsolakeModel:
    """Parses and checks artifact bytes: magic, version, header, length and SHA-256, then
    every tree invariant the walk relies on (a corrupt artifact must fail, not mis-score)."""
    header, payload = _split_artifact(data)
    if len(payload) != header["payload_len"]:
        raise ValueError(
            f"the payload is {len(payload)} bytes but the header records {header['payload_len']}"
        )
    actual = hashlib.sha256(payload).hexdigest()
    if actual != header["payload_sha256"]:
        raise ValueError(
            f"payload checksum mismatch: header says {header['payload_sha256']}, file has {actual}"
        )
    trees = _decode_payload(payload, header)
    psi = header["samples_per_tree"]
    return IsolakeModel(header=header, trees=trees, norm=len(trees) * average_path_length(psi))


def _split_artifact(data: bytes) -> tuple:
    """``(header dict, payload bytes)`` from the three parts of the file."""
    first_end = data.find(b"\n", 0, 65)
    if first_end < 0 or not data[:first_end].startswith(MAGIC + b" "):
        raise ValueError("not an isolake artifact (expected the first line `ISOLAKE-FOREST 1`)")
    version = data[len(MAGIC) + 1 : first_end].decode("ascii", "replace")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"artifact format version {version!r}; this reader supports {FORMAT_VERSION}"
        )
    header_end = data.find(b"\n", first_end + 1)
    if header_end < 0:
        raise ValueError("truncated artifact: the header line never ends")
    try:
        header = json.loads(data[first_end + 1 : header_end])
    except ValueError as e:
        raise ValueError(f"invalid JSON header: {e}") from None
    if not isinstance(header, dict) or set(header) != HEADER_FIELDS:
        raise ValueError(f"the header's fields are not isolake's: expected {sorted(HEADER_FIELDS)}")
    if header["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"header format_version {header['format_version']!r} is not {FORMAT_VERSION}"
        )
    return header, data[header_end + 1 :]


class _Reader:
    """Little-endian reader that checks the remaining length before every read."""

    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, dtype: str, count: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.buf):
            raise ValueError(f"truncated payload: {what} needs {size} bytes")
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out.astype(dtype[1:])  # native, aligned, writable copy


def _decode_payload(payload: bytes, header: dict) -> tuple:
    """The payload's trees, checked and compiled (layout in ``artifact.rs``)."""
    params = header["hyperparameters"]
    r = _Reader(payload)
    n_trees, terms = (int(v) for v in r.take("<u4", 2, "the tree and term counts"))
    if n_trees != params["n_estimators"] or terms != params["extension_level"] + 1:
        raise ValueError(
            f"payload has {n_trees} trees of {terms} term(s); the header says "
            f"{params['n_estimators']} trees at extension_level {params['extension_level']}"
        )
    limit = depth_limit(header["samples_per_tree"])
    n_features = len(header["feature_names"])
    if n_features == 0:
        raise ValueError("the header lists no feature")
    trees = []
    for t in range(n_trees):
        n = int(r.take("<u4", 1, "a node count")[0])
        if not 1 <= n < (2 << limit):
            raise ValueError(f"tree {t} claims {n} nodes (depth limit {limit})")
        child = r.take("<u4", n, "child indices").astype(np.intp)
        samples = r.take("<u4", n, "sample counts").astype(np.int64)
        features = r.take("<u4", n * terms, "split features").astype(np.intp).reshape(n, terms)
        coefs = r.take("<f8", n * terms, "split coefficients").reshape(n, terms)
        thresholds = r.take("<f8", n, "thresholds")
        try:
            depth = _check_tree(child, features, coefs, thresholds, n_features, limit)
        except ValueError as e:
            raise ValueError(f"tree {t}: {e}") from None
        trees.append(_compile(child, samples, features, coefs, thresholds, depth))
    if r.pos != len(payload):
        raise ValueError(f"{len(payload) - r.pos} unexpected bytes after the last tree")
    return tuple(trees)


def _check_tree(child, features, coefs, thresholds, n_features, limit) -> np.ndarray:
    """Checks the shape (children after their parent, right = left + 1, one parent each,
    depth within the limit) and the splits; returns every node's depth."""
    n = child.shape[0]
    internal = np.flatnonzero(child)
    left = child[internal]
    if np.any(left <= internal) or np.any(left + 1 >= n):
        raise ValueError("a child index is not after its parent or is out of range")
    kids = np.concatenate([left, left + 1])
    if kids.size != n - 1 or np.unique(kids).size != n - 1:
        raise ValueError("some node has no parent or two parents")
    if np.any(features >= n_features):
        raise ValueError(f"a split uses a feature beyond the model's {n_features}")
    if not (np.isfinite(coefs).all() and np.isfinite(thresholds).all()):
        raise ValueError("non-finite split coefficient or threshold")
    depth = np.zeros(n, dtype=np.int64)
    for i, c in zip(internal.tolist(), left.tolist()):  # parents come first
        depth[c] = depth[c + 1] = depth[i] + 1
    if depth.max() > limit:
        raise ValueError(f"a node lies deeper than the depth limit {limit}")
    return depth


def _compile(child, samples, features, coefs, thresholds, depth) -> HeapTree:
    """The padded heap form of a checked tree (see ``HeapTree``)."""
    max_depth = int(depth.max())
    width = 1 << max_depth
    terms = features.shape[1]
    heap_features = np.zeros((width, terms), dtype=np.intp)
    heap_coefs = np.zeros((width, terms))
    heap_thresholds = np.full(width, np.inf)
    leaves = np.zeros(width)
    stack = [(0, 1)]  # (node, heap slot)
    while stack:
        i, h = stack.pop()
        if child[i] == 0:
            while h < width:  # padding below a shallow leaf always goes left
                h *= 2
            leaves[h - width] = float(depth[i]) + average_path_length(int(samples[i]))
        else:
            heap_features[h], heap_coefs[h] = features[i], coefs[i]
            heap_thresholds[h] = thresholds[i]
            stack += [(int(child[i]), 2 * h), (int(child[i]) + 1, 2 * h + 1)]
    return HeapTree(max_depth, heap_features, heap_coefs, heap_thresholds, leaves)
