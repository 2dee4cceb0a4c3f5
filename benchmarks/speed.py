"""Speed of permutation importance against the bare forward pass and the generic tools, as ratios from one run.

For a `[64, 32]` and a `[200, 100]` `tabular_learner` on 15 continuous and 5 categorical columns:

- ours: `learn.permutation_importance(df=..., n_repeats=..., seed=0, show_progress=False)`
- floor: the bare model forward over as many rows as ours scores, (features x repeats + 1) x rows, on data
  encoded beforehand, at the batch size that was fastest among a few tried
- scikit-learn: `sklearn.inspection.permutation_importance` over a batched predict wrapper of the same model on
  the encoded matrix, scored by mean squared error
- captum: `FeaturePermutation` over a forward that returns the batch's mean squared error (one scalar, so
  captum's `perturbations_per_eval` must be 1; the forward runs the model in batches of the floor's size), with a
  feature mask making each column one feature, called once per repeat (each call also scores the unshuffled data)
- the snippet users copy (10,000 rows only): `test_dl(df, bs=64)`, shuffle a column of `dl.items`, `validate`
- all metrics: ours with `metric='all'` against `metric='rmse'` on a learner with three metrics (rmse, mae,
  `R2Score`), on the `[64, 32]` network, where scoring weighs most against the forward pass

Encoding the raw rows is inside every contender but the floor. One torch thread; the contenders take turns,
`--runs` rounds of each, and each reports its best round, in CPU seconds of the process: on a shared machine,
time spent waiting for a core is not the contender's. Run: `python benchmarks/speed.py` (`--quick`: a smoke run).
"""
import argparse, time, warnings
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance as sk_permutation_importance
from captum.attr import FeaturePermutation
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
LAYERS = ([64, 32], [200, 100])
SIZES = (1024, 2048, 4096, 8192, 16384, 32768)
CLOCK = time.process_time


def make_data(n, n_cont=15, n_cat=5, seed=0):
    "A regression frame with `n_cont` continuous and `n_cat` categorical features"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'num{i}': rng.normal(size=n) for i in range(n_cont)})
    for i in range(n_cat): df[f'cat{i}'] = rng.choice([f'v{j}' for j in range(8)], n)
    df['target'] = df[[f'num{i}' for i in range(n_cont)]].to_numpy() @ rng.normal(size=n_cont) + rng.normal(size=n)
    return df


def train(df, layers):
    "A `tabular_learner` with `layers` and the rmse metric, fitted for one epoch"
    cats = [c for c in df if c.startswith('cat')]
    conts = [c for c in df if c.startswith('num')]
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=cats, cont_names=conts,
                                     y_names='target', valid_pct=0.2, bs=1024, seed=0)
    learn = tabular_learner(dls, layers=layers, metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)
    return learn


def with_three_metrics(learn):
    "A learner on the same data and model as `learn`, with the metrics rmse, mae and `R2Score`"
    return TabularLearner(learn.dls, learn.model, loss_func=learn.loss_func, metrics=[rmse, mae, R2Score()])


def encode(learn, df):
    "Category codes, continuous values and targets of `df` as tensors, through `learn`'s procs"
    to = learn.dls.test_dl(df).dataset
    return (torch.tensor(to.cats.values, dtype=torch.long), torch.tensor(to.conts.values, dtype=torch.float32),
            torch.tensor(to.ys.values, dtype=torch.float32))


def forward(model, cats, conts, bs):
    "`model`'s predictions on `cats` and `conts`, `bs` rows at a time"
    with torch.no_grad(): return torch.cat([model(cats[i:i+bs], conts[i:i+bs]) for i in range(0, len(cats), bs)])


def best_bs(model, cats, conts, runs):
    "The fastest batch size of `SIZES` for a bare forward pass over `cats` and `conts`"
    times = race({bs: lambda bs=bs: forward(model, cats, conts, bs) for bs in SIZES if bs < 2*len(cats)}, runs, CLOCK)
    return min(times, key=times.get)


def floor(model, cats, conts, n_passes, bs):
    "`n_passes` bare forward passes over `cats` and `conts`"
    for _ in range(n_passes): forward(model, cats, conts, bs)


def snippet(learn, df, features):
    "The forum recipe: a small-batch test dataloader, one shuffled column of `dl.items` and a validate per feature"
    dl = learn.dls.test_dl(df, bs=64)
    with learn.no_bar():
        base = learn.validate(dl=dl)[1]
        res = {}
        for f in features:
            saved = dl.items[f].copy()
            dl.items[f] = np.random.permutation(saved.values)
            res[f] = learn.validate(dl=dl)[1] - base
            dl.items[f] = saved
    return res


class EncodedModel(RegressorMixin, BaseEstimator):
    "The fastai model on encoded inputs (category codes, then continuous values), batched"
    def __init__(self, model=None, n_cat=0, bs=8192): self.model, self.n_cat, self.bs = model, n_cat, bs
    def fit(self, X, y): return self
    def predict(self, X):
        X = torch.as_tensor(X)
        return forward(self.model, X[:, :self.n_cat].long(), X[:, self.n_cat:], self.bs).numpy().ravel()


def sklearn_way(learn, df, n_repeats, bs):
    "scikit-learn's permutation importance on the encoded data, scored by mean squared error"
    cats, conts, y = encode(learn, df)
    X = torch.cat([cats.float(), conts], 1).numpy()
    est = EncodedModel(learn.model.eval(), cats.shape[1], bs)
    return sk_permutation_importance(est, X, y.numpy().ravel(), scoring='neg_mean_squared_error',
                                     n_repeats=n_repeats, random_state=0)


def captum_way(learn, df, n_repeats, bs):
    "captum's `FeaturePermutation` of each column, `n_repeats` times, scoring the mean squared error"
    cats, conts, y = encode(learn, df)
    model = learn.model.eval()
    def mse(cats, conts, y): return ((forward(model, cats, conts, bs) - y)**2).mean()
    n_cat = cats.shape[1]
    mask = (torch.arange(n_cat)[None], n_cat + torch.arange(conts.shape[1])[None])
    torch.manual_seed(0)
    fp = FeaturePermutation(mse)
    return [fp.attribute((cats, conts), additional_forward_args=(y,), feature_mask=mask, perturbations_per_eval=1)
            for _ in range(n_repeats)]


def ours(learn, df, n_repeats, **kwargs):
    "This package's permutation importance"
    return learn.permutation_importance(df=df, n_repeats=n_repeats, seed=0, show_progress=False, **kwargs)


def small_run(learn, df, features, runs):
    "Times of ours, the floor and the snippet at one repeat"
    model, (cats, conts, _) = learn.model.eval(), encode(learn, df)
    bs = best_bs(model, cats, conts, runs)
    t = race({'ours': lambda: ours(learn, df, 1), 'floor': lambda: floor(model, cats, conts, len(features) + 1, bs),
              'snippet': lambda: snippet(learn, df, features)}, runs, CLOCK)
    return dict(t, bs=bs)


def big_run(learn, df, features, repeats, runs):
    "Times of ours, the floor, scikit-learn and captum at `repeats` repeats"
    model, (cats, conts, _) = learn.model.eval(), encode(learn, df)
    bs = best_bs(model, cats, conts, runs)
    t = race({'ours': lambda: ours(learn, df, repeats),
              'floor': lambda: floor(model, cats, conts, len(features)*repeats + 1, bs),
              'sklearn': lambda: sklearn_way(learn, df, repeats, bs), 'captum': lambda: captum_way(learn, df, repeats, bs)},
             runs, CLOCK)
    return dict(t, bs=bs)


def all_metrics_run(learn, df, repeats, runs):
    "Times of ours with `metric='all'` and with one metric on a three-metric learner, or a note why it was skipped"
    learn3 = with_three_metrics(learn)
    try: ours(learn3, df.iloc[:500], 1, metric='all')
    except Exception as e: return f"skipped: `metric='all'` raised {type(e).__name__}: {e}"
    return race({'one': lambda: ours(learn3, df, repeats, metric='rmse'),
                 'all': lambda: ours(learn3, df, repeats, metric='all')}, runs, CLOCK)


def ratio(t, a, b): return f"{t[a]/t[b]:.2f}" if a in t and b in t else ''
def secs(t, k): return f"{t[k]:.2f} s" if k in t else ''


def main(rows, repeats, small_rows, runs):
    torch.set_num_threads(1)
    df = make_data(max(rows, small_rows) + 20000)
    features = [c for c in df if c != 'target']
    held_out = df.iloc[20000:].reset_index(drop=True)
    big, small = held_out.iloc[:rows], held_out.iloc[:small_rows]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {len(features)} features; best of {runs} rounds, CPU seconds\n")
    print("| layers | rows × features × repeats | ours | floor (batch size) | scikit-learn | captum | snippet "
          "| ours/floor | ours/sklearn | ours/captum |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    learners = [train(df.iloc[:20000], layers) for layers in LAYERS]
    for layers, learn in zip(LAYERS, learners):
        for t, n, r in ((small_run(learn, small, features, runs), small_rows, 1),
                        (big_run(learn, big, features, repeats, runs), rows, repeats)):
            print(f"| {layers} | {n:,} × {len(features)} × {r} | {secs(t, 'ours')} | {secs(t, 'floor')} ({t['bs']:,}) "
                  f"| {secs(t, 'sklearn')} | {secs(t, 'captum')} | {secs(t, 'snippet')} | {ratio(t, 'ours', 'floor')} "
                  f"| {ratio(t, 'ours', 'sklearn')} | {ratio(t, 'ours', 'captum')} |", flush=True)
    t = all_metrics_run(learners[0], big, repeats, runs)
    print(f"\n`metric='all'` (rmse, mae, R2Score) against `metric='rmse'`, {LAYERS[0]}, {rows:,} × {len(features)} × {repeats}:")
    if isinstance(t, str): print(t)
    else:
        print("\n| one metric | all three metrics | all/one |\n|---|---|---|")
        print(f"| {secs(t, 'one')} | {secs(t, 'all')} | {ratio(t, 'all', 'one')} |")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=100_000)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--small-rows', type=int, default=10_000)
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--quick', action='store_true', help='a smoke run: 5,000 and 2,000 rows, 2 repeats, 1 round')
    a = p.parse_args()
    if a.quick: a.rows, a.small_rows, a.repeats, a.runs = 5000, 2000, 2, 1
    main(a.rows, a.repeats, a.small_rows, a.runs)
