"""Speed of `learn.feature_correlation()` against the pair-by-pair computation it replaced.

The old path, rebuilt here as the baseline: Cramér's V and the correlation ratio one pair of columns at a time,
then one pandas `.loc` per pair of features. The new one: `association_matrix` and `unit_association` for all
pairs at once. Both include encoding the data (`Engine`), which is timed alone too. The contenders take turns,
`--runs` rounds, on one torch thread; each reports its best round, and the two matrices are checked to agree.
Run: `python benchmarks/association.py [--rows 2000] [--cats 100] [--conts 200] [--runs 3]`.
"""
import argparse, warnings
import numpy as np, pandas as pd, torch
from scipy import stats
from fastai.tabular.all import *
from fastai_featimp.all import *
from fastai_featimp.association import _abs_corr, _codes, _epsilon, _table_v
from timing import race

warnings.filterwarnings('ignore')


def make_learner(rows, n_cat, n_cont, seed=0):
    "An untrained `tabular_learner` whose validation set is `rows` rows of `n_cat` categorical (2-50 levels) and `n_cont` continuous features"
    rng = np.random.default_rng(seed)
    n = 2*rows
    base = rng.normal(size=(n, 10))  # shared factors, so that some features go together
    conts = base[:, rng.integers(0, 10, n_cont)] + rng.normal(size=(n, n_cont))*rng.uniform(0.1, 3, n_cont)
    df = pd.DataFrame(conts, columns=[f'num{i}' for i in range(n_cont)])
    for i in range(n_cat):
        levels = rng.integers(2, 51)
        driven = np.digitize(base[:, i % 10], np.quantile(base[:, i % 10], np.linspace(0, 1, levels+1)[1:-1]))
        df[f'cat{i}'] = np.where(rng.random(n) < 0.5, driven, rng.integers(0, levels, n)).astype(str)
    df.loc[rng.random(n) < 0.1, 'num0'] = np.nan  # a `_na` companion column
    df['y'] = base[:, 0] + rng.normal(size=n)
    cats, cont_names = [f'cat{i}' for i in range(n_cat)], [f'num{i}' for i in range(n_cont)]
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=cats, cont_names=cont_names,
                                     y_names='y', valid_idx=list(range(rows, n)), bs=1024)
    return tabular_learner(dls, layers=[32])


def old_column_association(data, features):
    "The column association as it was: Cramér's V and the correlation ratio one pair of columns at a time"
    n_cat, n_cont = data.cats.shape[1], data.conts.shape[1]
    names = [None]*(n_cat+n_cont)
    for f in features.values():
        for n, i in zip(f.cat_names, f.cat_idx): names[i] = n
        for n, i in zip(f.cont_names, f.cont_idx): names[n_cat+i] = n
    cats, conts = data.cats.cpu().numpy(), data.conts.cpu().double().numpy()
    codes = [_codes(cats[:, i]) for i in range(n_cat)]
    assoc = np.eye(n_cat+n_cont)
    assoc[n_cat:, n_cat:] = _abs_corr(stats.rankdata(conts, axis=0)) if n_cont else 1.
    for i in range(n_cat):
        for j in range(i):
            ny = codes[j].max()+1
            table = np.bincount(codes[i]*ny + codes[j], minlength=(codes[i].max()+1)*ny).reshape(-1, ny).astype(float)
            assoc[i, j] = assoc[j, i] = _table_v(table)
        for j in range(n_cont): assoc[i, n_cat+j] = assoc[n_cat+j, i] = _epsilon(codes[i], conts[:, j])
    return pd.DataFrame(assoc, index=names, columns=names)


def old_unit_association(columns, units):
    "The unit association as it was: one pandas `.loc` per pair of units"
    names = [u.name for u in units]
    assoc = pd.DataFrame(np.eye(len(units)), index=names, columns=names)
    for i, a in enumerate(units):
        for j in range(i):
            assoc.iloc[i, j] = assoc.iloc[j, i] = columns.loc[a.columns, units[j].columns].to_numpy().max()
    return assoc


def old_feature_correlation(learn, threshold=0.7):
    "`learn.feature_correlation()` on the pair-by-pair path"
    eng = Engine(learn, with_labels=False)
    columns = old_column_association(eng.data, eng.features)
    return FeatureCorrelation(old_unit_association(columns, list(eng.features.values())), threshold)


def main(rows, n_cat, n_cont, runs):
    torch.set_num_threads(1)
    learn = make_learner(rows, n_cat, n_cont)
    old, new = old_feature_correlation(learn), learn.feature_correlation()
    diff = np.abs(old.matrix.to_numpy() - new.matrix.to_numpy()).max()
    assert list(old.matrix.index) == list(new.matrix.index) and diff < 1e-9, diff
    assert old.groups == new.groups
    eng = Engine(learn, with_labels=False)
    print(f"{len(new.matrix)} features ({n_cat} categorical, {n_cont} continuous, {eng.data.conts.shape[1]} + "
          f"{eng.data.cats.shape[1]} tensor columns) x {rows:,} rows; torch {torch.get_num_threads()} thread; best of {runs}")
    times = race({'old: pair by pair': lambda: old_feature_correlation(learn),
                  'new: all pairs at once': lambda: learn.feature_correlation(),
                  'encoding alone (Engine)': lambda: Engine(learn, with_labels=False),
                  'new association_matrix alone': lambda: column_association(eng.data, eng.features)}, runs)
    for name, t in times.items(): print(f"{name:<30} {t:8.3f} s")
    print(f"old / new: {times['old: pair by pair']/times['new: all pairs at once']:.1f}x; "
          f"largest difference between the matrices {diff:.1e}; same groups at 0.7: {len(new.groups)}")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=2000)
    p.add_argument('--cats', type=int, default=100)
    p.add_argument('--conts', type=int, default=200)
    p.add_argument('--runs', type=int, default=3)
    a = p.parse_args()
    main(a.rows, a.cats, a.conts, a.runs)
