"""Speed of permutation importance, as ratios measured in one run on one learner and one dataset.

(a) the snippet users copy: `test_dl(df, bs=64)`, shuffle a column of the processed `dl.items`, `learn.validate`
(b) `learn.permutation_importance`
(c) the floor: the bare model forward over the same (features x repeats + 1) x rows, best batch size
(d) `sklearn.inspection.permutation_importance` over a batched predict wrapper of the same model

All four run in one process on one learner. The machine is noisy, so they take turns, `--runs` rounds of
each in turn so that every one meets the same disturbances, and each reports its best round. Run: `make bench` (or
`python benchmarks/speed.py --rows 100000 --repeats 5 --runs 3`).
"""
import argparse, warnings
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance as sk_permutation_importance
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')


def make_data(n, n_cont=15, n_cat=5, seed=0):
    "A regression frame with `n_cont` continuous and `n_cat` categorical features"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'num{i}': rng.normal(size=n) for i in range(n_cont)})
    for i in range(n_cat): df[f'cat{i}'] = rng.choice([f'v{j}' for j in range(8)], n)
    df['target'] = df[[f'num{i}' for i in range(n_cont)]].to_numpy() @ rng.normal(size=n_cont) + rng.normal(size=n)
    return df


def train(df):
    "A default-sized `tabular_learner` fitted for one epoch"
    cats = [c for c in df if c.startswith('cat')]
    conts = [c for c in df if c.startswith('num')]
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=cats, cont_names=conts,
                                     y_names='target', valid_pct=0.2, bs=1024, seed=0)
    learn = tabular_learner(dls, metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)
    return learn


def snippet(learn, df, features):
    "The forum recipe: a small-batch test dataloader, one shuffled column of `dl.items` and a validate per feature"
    dl = learn.dls.test_dl(df, bs=64)
    base = learn.validate(dl=dl)[1]
    res = {}
    for f in features:
        saved = dl.items[f].copy()
        dl.items[f] = np.random.permutation(saved.values)
        res[f] = learn.validate(dl=dl)[1] - base
        dl.items[f] = saved
    return res


def floor(learn, df, n_passes, runs):
    "A function making `n_passes` bare forward passes over `df` (encoded beforehand) at the best batch size, and that size"
    eng = Engine(learn, df=df)
    cats, conts = eng.data.cats, eng.data.conts
    model = learn.model.eval()
    def passes(n, bs):
        with torch.no_grad():
            for _ in range(n):
                for i in range(0, len(cats), bs): model(cats[i:i+bs], conts[i:i+bs])
    sizes = sorted({1024, 2048, 4096, 8192, 16384, 32768, 65536, default_bs(model, 'cpu')})
    best = race({bs: lambda bs=bs: passes(3, bs) for bs in sizes}, runs)
    bs = min(best, key=best.get)
    return (lambda: passes(n_passes, bs)), bs


class EncodedModel(RegressorMixin, BaseEstimator):
    "The fastai model on encoded inputs (category codes, then continuous values), batched"
    def __init__(self, model=None, n_cat=0, bs=8192): self.model, self.n_cat, self.bs = model, n_cat, bs
    def fit(self, X, y): return self
    def predict(self, X):
        X = torch.as_tensor(X)
        with torch.no_grad():
            return torch.cat([self.model(X[i:i+self.bs, :self.n_cat].long(), X[i:i+self.bs, self.n_cat:])
                              for i in range(0, len(X), self.bs)]).numpy().ravel()


def sklearn_way(learn, df, n_repeats):
    "scikit-learn's permutation importance on the encoded data, scored by mean squared error"
    eng = Engine(learn, df=df)
    X = torch.cat([eng.data.cats.float(), eng.data.conts], 1).numpy()
    y = eng.data.ys[0].numpy().ravel()
    est = EncodedModel(learn.model.eval(), eng.data.cats.shape[1])
    return sk_permutation_importance(est, X, y, scoring='neg_mean_squared_error', n_repeats=n_repeats, random_state=0)


def main(rows, repeats, snippet_rows, runs):
    torch.set_num_threads(torch.get_num_threads())
    df = make_data(max(rows, snippet_rows) + 20000)
    learn = train(df.iloc[:20000])
    features = [c for c in df if c != 'target']
    layers = [m.out_features for m in learn.model.modules() if isinstance(m, nn.Linear)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(features)} features, "
          f"linear layers {layers}, default_bs {default_bs(learn.model, 'cpu')}; best of {runs} runs")

    small = df.iloc[20000:20000+snippet_rows].reset_index(drop=True)
    floor_small, bs_small = floor(learn, small, len(features) + 1, runs)
    with learn.no_bar():
        t = race({'a': lambda: snippet(learn, small, features),
                  'b': lambda: learn.permutation_importance(df=small, n_repeats=1, seed=0, show_progress=False),
                  'c': floor_small}, runs)
    print(f"\n{snippet_rows:,} rows, {len(features)} features, 1 repeat ({len(features) + 1} passes over the data):")
    print(f"  (a) snippet      {t['a']:8.2f} s    (a)/(b) = {t['a']/t['b']:,.0f}x")
    print(f"  (b) ours         {t['b']:8.2f} s    (b)/(c) = {t['b']/t['c']:.2f}")
    print(f"  (c) floor        {t['c']:8.2f} s    (a)/(c) = {t['a']/t['c']:,.0f}x   (bs {bs_small})")

    big = df.iloc[20000:20000+rows].reset_index(drop=True)
    n_passes = len(features)*repeats + 1
    floor_big, bs_big = floor(learn, big, n_passes, runs)
    t = race({'b': lambda: learn.permutation_importance(df=big, n_repeats=repeats, seed=0, show_progress=False),
              'c': floor_big, 'd': lambda: sklearn_way(learn, big, repeats)}, runs)
    print(f"\n{rows:,} rows, {len(features)} features, {repeats} repeats ({n_passes} passes over the data):")
    print(f"  (b) ours         {t['b']:8.2f} s    (b)/(c) = {t['b']/t['c']:.2f}")
    print(f"  (c) floor        {t['c']:8.2f} s    (bs {bs_big})")
    print(f"  (d) scikit-learn {t['d']:8.2f} s    (d)/(c) = {t['d']/t['c']:.2f}   (b)/(d) = {t['b']/t['d']:.2f}")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=100_000)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--snippet-rows', type=int, default=10_000)
    p.add_argument('--runs', type=int, default=3)
    a = p.parse_args()
    main(a.rows, a.repeats, a.snippet_rows, a.runs)
