"""Train the learned tier classifier and write clawrouter_plugin/data/router_model.json.

Run: .venv/bin/pip install -e '.[train]' && .venv/bin/python scripts/train_router.py [--search]

- Trains on the corpus's train split (tests/router/corpus/), plus each train row once more as
  the OpenClaw gateway would wrap it (tests/support/host_shapes.py), so the host's wrapping
  does not move the tier.
- Chooses the regularisation (and, with ``--search``, featurisation settings) on the
  validation split only; the frozen test split is never read here.
- Once every setting is chosen, fits the shipped weights once more on train + validation with
  those settings (more rows, nothing left to choose).
- Calibrates the tier probabilities by temperature scaling on validation and prints a
  reliability table and the expected calibration error (ECE) before and after.
- Trains the agentic head (binary logistic regression on the same features, with the structural
  and keyword columns scaled down, which regularises them harder) and picks its C, that scale
  and its threshold on validation.
- Writes the model deterministically: the same corpus and code give the same file.

numpy, scipy and scikit-learn are needed here only (the ``train`` extra), never at runtime.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, diags
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clawrouter_plugin.catalog import load_catalog  # noqa: E402
from clawrouter_plugin.router.classifier import (  # noqa: E402
    COLUMNS,
    DEFAULT_PARAMS,
    DENSE_BUCKETS,
    MODEL_FILE,
    Featurizer,
    Params,
    encode_model,
)
from clawrouter_plugin.router.corpus import expand, in_split, load_corpus  # noqa: E402
from clawrouter_plugin.router.decision import Policy, tier_prices  # noqa: E402
from clawrouter_plugin.router.features import read_request  # noqa: E402
from clawrouter_plugin.router.scorer import Scorer  # noqa: E402
from clawrouter_plugin.router.settings import TIERS, default_config  # noqa: E402
from tests.support.host_shapes import wrap  # noqa: E402

CORPUS = ROOT / "tests" / "router" / "corpus"
OUTPUT = ROOT / "clawrouter_plugin" / MODEL_FILE
HISTORY_TURNS = 3  # earlier user turns read (routing.yaml classifier.historyTurns)
C_GRID = (4.0, 8.0, 16.0, 32.0, 64.0)
# the agentic head: its own C grid (a binary fit takes seconds, so it is not tied to the tier
# model's grid) and the factor on the structural and keyword columns it is trained on. A factor
# k below 1 makes the L2 penalty on those columns 1/k^2 stronger, so the head leans on the
# words of the ask rather than on "has tools" (an agent host sends tools with every ask). The
# weights are multiplied back by k, so the shipped head reads the features unchanged.
HEAD_C_GRID = (16.0, 64.0)
HEAD_DENSE_SCALES = (1.0, 0.25)
HEAD_THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))  # 0.10 … 0.90
MIN_DOCUMENTS = 2  # a bucket must occur in this many training requests to get a weight
TEMPERATURES = tuple(round(0.25 * 1.05 ** i, 4) for i in range(80))
BINS = 10
# cost-aware choice: the under-routing rate each profile accepts; the penalties with the best
# validation accuracy whose validation under-routing stays a margin below it are chosen (ties:
# the cheaper routing). Validation is one sample; a held-out split of HELD_OUT_ROWS requests is
# another, whose rate strays from the true one by about sqrt(r(1 - r) / n). Keeping validation
# MARGIN_Z such errors under the limit leaves about a 90% chance that an unseen split of that
# size stays within it, where choosing right at the limit leaves about 50%.
UNDER_RATE = {"eco": 0.06, "auto": 0.04, "agentic": 0.04, "premium": 0.02}
HELD_OUT_ROWS = 600
MARGIN_Z = 1.28
UNDER_GRID = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
OVER_GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5)
# the file keeps this many buckets, those with the largest weights (the model file must stay
# under 2 MB; on validation 60,000 to 150,000 kept buckets scored within 0.001 of all 205,000)
MAX_BUCKETS = 90_000


def views(rows: list[dict], wrapped: bool) -> list:
    """RequestViews of the rows (optionally as the OpenClaw gateway wraps them)."""
    out = []
    for row in rows:
        body = expand(row)
        out.append(read_request(wrap(body) if wrapped else body, 0, HISTORY_TURNS))
    return out


def known_buckets(vectors: list[dict[int, float]]) -> list[int]:
    """The buckets that get a weight: those in at least MIN_DOCUMENTS training requests."""
    documents: dict[int, int] = {}
    for vector in vectors:
        for key in vector:
            documents[key] = documents.get(key, 0) + 1
    return sorted(k for k, n in documents.items() if n >= MIN_DOCUMENTS)


def matrix(vectors: list[dict[int, float]], columns: dict[int, int]) -> csr_matrix:
    """A sparse matrix of feature dicts, keeping only the known buckets."""
    data, indices, indptr = [], [], [0]
    for vector in vectors:
        for key in sorted(vector):
            column = columns.get(key)
            if column is not None:
                indices.append(column)
                data.append(vector[key])
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(vectors), len(columns)))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def reliability(p: np.ndarray, labels: np.ndarray) -> tuple[str, float]:
    """A markdown reliability table (confidence bins) and the ECE."""
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    lines = ["| confidence | requests | mean confidence | accuracy |", "|---|---:|---:|---:|"]
    ece = 0.0
    for b in range(BINS):
        low, high = b / BINS, (b + 1) / BINS
        chosen = (confidence > low) & (confidence <= high) if b else confidence <= high
        n = int(chosen.sum())
        if not n:
            continue
        mean_conf, acc = float(confidence[chosen].mean()), float(correct[chosen].mean())
        ece += n / len(labels) * abs(mean_conf - acc)
        lines.append(f"| {low:.1f}–{high:.1f} | {n} | {mean_conf:.3f} | {acc:.3f} |")
    return "\n".join(lines), ece


def fit(params: Params, train_rows: list[dict], val_rows: list[dict], c_grid: tuple[float, ...],
        quiet: bool = False) -> dict:
    """Train on train (plain + wrapped), pick C on validation (plain + wrapped accuracy)."""
    featurizer = Featurizer(params, Scorer(default_config().settings()))
    train_views = views(train_rows, False) + views(train_rows, True)
    val_views = views(val_rows, False) + views(val_rows, True)
    train_x = [featurizer.flat(v) for v in train_views]
    val_x = [featurizer.flat(v) for v in val_views]
    buckets = known_buckets(train_x)
    columns = {k: i for i, k in enumerate(buckets)}
    x_train, x_val = matrix(train_x, columns), matrix(val_x, columns)
    tier_index = {t: i for i, t in enumerate(TIERS)}
    y_train = np.array([tier_index[r["tier"]] for r in train_rows] * 2)
    y_val = np.array([tier_index[r["tier"]] for r in val_rows] * 2)
    best = None
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=3000, tol=1e-6)
        model.fit(x_train, y_train)
        predicted = model.predict(x_val)
        accuracy = float((predicted == y_val).mean())
        below = float((predicted < y_val).mean())
        if not quiet:
            print(f"  C={c:<5} validation accuracy {accuracy:.3f}  below {below:.3f}")
        if best is None or accuracy > best["accuracy"] + 1e-9:
            best = {"c": c, "model": model, "accuracy": accuracy, "below": below}
    assert best is not None
    best.update(buckets=buckets, x_train=x_train, x_val=x_val, y_train=y_train, y_val=y_val,
                params=params)
    return best


def dense_scale(buckets: list[int], factor: float) -> np.ndarray:
    """Per-column factor: ``factor`` on the structural and keyword columns, 1 elsewhere."""
    scale = np.ones(len(buckets))
    if factor != 1.0:
        column = {key: i for i, key in enumerate(buckets)}
        for key in DENSE_BUCKETS:
            if key in column:
                scale[column[key]] = factor
    return scale


def fit_head(x: csr_matrix, labels: np.ndarray, c: float, scale: np.ndarray) -> tuple:
    """The agentic head fitted on ``x`` with its columns scaled; returns the model and its
    weights for the unscaled features (the scale folded back in)."""
    head = LogisticRegression(C=c, max_iter=3000, tol=1e-6)
    head.fit(x @ diags(scale), labels)
    return head, head.coef_[0] * scale


def agentic_head(best: dict, train_rows: list[dict], val_rows: list[dict]) -> tuple:
    """C, dense scale and threshold of the binary LR for the agentic flag, chosen on validation
    (the best of min(precision, recall): the targets ask for both)."""
    y_train = np.array([r["agentic"] for r in train_rows] * 2, dtype=int)
    y_val = np.array([r["agentic"] for r in val_rows] * 2, dtype=int)
    chosen = None
    for factor in HEAD_DENSE_SCALES:
        scale = dense_scale(best["buckets"], factor)
        for c in HEAD_C_GRID:
            head, weights = fit_head(best["x_train"], y_train, c, scale)
            scores = 1.0 / (1.0 + np.exp(-(best["x_val"] @ weights + head.intercept_[0])))
            best_here = None
            for threshold in HEAD_THRESHOLDS:
                got = scores >= threshold
                tp = int((got & (y_val == 1)).sum())
                precision = tp / max(1, int(got.sum()))
                recall = tp / max(1, int(y_val.sum()))
                worst = min(precision, recall)
                if best_here is None or worst > best_here[0] + 1e-9:
                    best_here = (worst, threshold, precision, recall)
            worst, threshold, precision, recall = best_here
            print(f"  agentic head C={c:<5} dense x{factor:<4}: threshold {threshold:.2f}  "
                  f"precision {precision:.3f}  recall {recall:.3f}")
            if chosen is None or worst > chosen[0] + 1e-9:
                chosen = (worst, c, factor, threshold, precision, recall)
    assert chosen is not None
    _, c, factor, threshold, precision, recall = chosen
    print(f"agentic head: C={c} dense x{factor} threshold {threshold:.2f}  validation precision "
          f"{precision:.3f}  recall {recall:.3f}")
    return c, factor, threshold


def refit(params: Params, rows: list[dict], c: float, head_c: float, head_factor: float) -> tuple:
    """The tier model and the agentic head fitted on ``rows`` (train + validation) with the
    settings chosen on validation; returns the tier model, the head, the head's weights (for
    the unscaled features) and the buckets."""
    featurizer = Featurizer(params, Scorer(default_config().settings()))
    vectors = [featurizer.flat(v) for v in views(rows, False) + views(rows, True)]
    buckets = known_buckets(vectors)
    x = matrix(vectors, {k: i for i, k in enumerate(buckets)})
    tier_index = {t: i for i, t in enumerate(TIERS)}
    model = LogisticRegression(C=c, max_iter=3000, tol=1e-6)
    model.fit(x, np.array([tier_index[r["tier"]] for r in rows] * 2))
    head, head_weights = fit_head(x, np.array([r["agentic"] for r in rows] * 2, dtype=int),
                                  head_c, dense_scale(buckets, head_factor))
    print(f"refitted on train + validation: {len(rows)} rows, {len(buckets)} buckets")
    return model, head, head_weights, buckets


def penalties(p: np.ndarray, labels: np.ndarray) -> None:
    """Print each profile's penalties (routing.yaml), chosen on validation probabilities."""
    settings = default_config().settings()
    catalog = load_catalog()
    print("\ncost-aware choice on validation (paste into routing.yaml `penalties`):")
    for profile, limit in UNDER_RATE.items():
        rate = tolerated(limit)
        prices = tier_prices(settings.tables[profile], catalog)
        chosen = None
        for under in UNDER_GRID:
            for over in OVER_GRID:
                policy = Policy(prices, under, over)
                picked = np.array([policy.choose(row.tolist()) for row in p])
                below = float((picked < labels).mean())
                key = (float((picked == labels).mean()), -float(np.mean([prices[i] for i in picked])))
                if below <= rate and (chosen is None or key > chosen[0]):
                    chosen = (key, under, over, below)
        if chosen is None:
            print(f"  {profile}: no penalties reach under-routing {rate:.1%}")
            continue
        (accuracy, price), under, over, below = chosen
        print(f"  {profile}: {{underRouting: {under}, overRouting: {over}}}  # validation "
              f"accuracy {accuracy:.3f}, below {below:.3f} (limit {limit:.0%}, kept under "
              f"{rate:.2%}), mean price {-price:.3f}")


def tolerated(limit: float) -> float:
    """The validation under-routing allowed for a profile that accepts ``limit`` on unseen
    requests: ``limit`` less MARGIN_Z sampling errors of a HELD_OUT_ROWS-request split."""
    return limit - MARGIN_Z * math.sqrt(limit * (1 - limit) / HELD_OUT_ROWS)


def search(train_rows: list[dict], val_rows: list[dict]) -> Params:
    """Try a few featurisation settings; keep the best on validation."""
    candidates = [DEFAULT_PARAMS,
                  DEFAULT_PARAMS._replace(char_low=3, char_high=5),
                  DEFAULT_PARAMS._replace(char_low=1, char_high=4),
                  DEFAULT_PARAMS._replace(system_weight=0.15, history_weight=0.15),
                  DEFAULT_PARAMS._replace(system_weight=0.6, history_weight=0.6),
                  DEFAULT_PARAMS._replace(word_weight=0.5),
                  DEFAULT_PARAMS._replace(keyword_weight=1.0),
                  DEFAULT_PARAMS._replace(keyword_weight=5.0)]
    results = []
    for params in candidates:
        best = fit(params, train_rows, val_rows, (2.0, 8.0, 32.0), quiet=True)
        print(f"{params}: C={best['c']} accuracy {best['accuracy']:.3f} below {best['below']:.3f}")
        results.append((best["accuracy"], -best["below"], params))
    return max(results, key=lambda r: (r[0], r[1]))[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", action="store_true", help="also search featurisation settings")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--c-grid", type=lambda text: tuple(float(c) for c in text.split(",")),
                        default=C_GRID, help="regularisation values to try, e.g. 8,16 "
                        "(each is a fit of several minutes on a large corpus)")
    args = parser.parse_args()
    rows = load_corpus(CORPUS)
    train_rows, val_rows = in_split(rows, "train"), in_split(rows, "validation")
    print(f"train {len(train_rows)} rows, validation {len(val_rows)} rows (each also wrapped)")
    params = search(train_rows, val_rows) if args.search else DEFAULT_PARAMS
    print(f"featurisation: {params}")
    best = fit(params, train_rows, val_rows, args.c_grid)
    model = best["model"]
    predicted = best["model"].predict(best["x_val"])
    recall = "  ".join(f"{tier} {float((predicted[best['y_val'] == i] == i).mean()):.3f}"
                       for i, tier in enumerate(TIERS))
    print(f"chosen C={best['c']}: validation accuracy {best['accuracy']:.3f}, below "
          f"{best['below']:.3f}; recall {recall}")
    val_logits = model.decision_function(best["x_val"])
    temperature = min(TEMPERATURES, key=lambda t: nll(val_logits, best["y_val"], t))
    table, ece = reliability(probabilities(val_logits, 1.0), best["y_val"])
    print(f"\nvalidation reliability before calibration (ECE {ece:.3f}):\n{table}")
    table, ece = reliability(probabilities(val_logits, temperature), best["y_val"])
    print(f"\nafter temperature scaling, T={temperature} (ECE {ece:.3f}):\n{table}\n")
    penalties(probabilities(val_logits, temperature), best["y_val"])
    head_c, head_factor, threshold = agentic_head(best, train_rows, val_rows)
    model, head, head_weights, buckets = refit(params, train_rows + val_rows, best["c"], head_c,
                                               head_factor)
    coef = model.coef_ - model.coef_.mean(axis=0)  # softmax is shift-invariant per feature
    bias = model.intercept_ - model.intercept_.mean()
    weights = np.hstack([coef.T, head_weights[:, None]])
    keep = np.sort(np.argsort(-np.abs(weights).max(axis=1), kind="stable")[:MAX_BUCKETS])
    buckets = [buckets[i] for i in keep]
    text = encode_model(params, buckets, weights[keep].tolist(),
                        [*bias.tolist(), float(head.intercept_[0])], float(temperature), threshold,
                        {"c": best["c"], "agentic_c": head_c, "agentic_dense_scale": head_factor,
                         "train_rows": len(train_rows) + len(val_rows),
                         "validation_accuracy": round(best["accuracy"], 4),
                         "validation_ece": round(ece, 4)})
    assert weights.shape[1] == COLUMNS
    args.output.write_text(text, "utf-8")
    print(f"wrote {args.output} ({len(buckets)} buckets, {len(text.encode()) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
