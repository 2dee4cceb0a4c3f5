"""Shapley values of single predictions: speed and accuracy against exact values, ours against shap.

One `tabular_learner` (layers [200, 100]) on 15 features: 5 categorical and 10 continuous, 3 of them with missing
values, so that `FillMissing` adds `_na` companions; 15 players, a category code being one player and a continuous
value with its `_na` flag another. Explained: `--rows` held-out rows against `--background` training rows.

- exact: interventional Shapley values by brute force over all 2^15 coalitions, each valued as the model's mean
  prediction over the background rows with the coalition's columns taken from the explained row; on the learner's
  own encoding, vectorised in torch, for the first `--exact-rows` explained rows only (each costs
  2^15 x background model rows); errors are measured on those rows
- shap: `PermutationExplainer` (its default 500 evaluations per row, and `--shap-evals` more for a run at
  about our accuracy) with an `Independent` masker over the
  background, on a matrix with one column per player (category codes; raw continuous values, NaN for missing)
  and a wrapper that encodes it as the learner's procs do (`_na` flag, fill value, normalisation) and runs the
  model in batches
- ours: `learn.shap_values(df=rows, background=bg, seed=0, show_progress=False)`, when the package has it

Error is mean |estimate - exact| / mean |exact| over the exact rows and players. Everything runs on one torch
thread; the contenders take turns, best of `--runs` rounds, in CPU seconds of the process (on a shared machine,
time spent waiting for a core is not the contender's). Run: `python benchmarks/shapley.py` (`--quick`: a smoke run).
"""
import argparse, math, time, warnings
import numpy as np, pandas as pd, torch, shap
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
CATS = {f'cat{i}': n for i, n in enumerate((3, 4, 5, 6, 8))}
CLOCK = time.process_time
CONTS = [f'num{i}' for i in range(10)]
MISSING = {'num0': 0.1, 'num1': 0.15, 'num2': 0.2}


def make_data(n, seed=0):
    "A regression frame on `CATS` and `CONTS` with interactions, correlated columns and values missing from `MISSING`"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in CONTS})
    df['num1'] += 0.6*df.num0
    for c, k in CATS.items(): df[c] = rng.integers(0, k, n)
    effect = rng.normal(size=8)
    y = (1.5*df.num0 + df.num1*df.num2 + np.sin(2*df.num3) + 0.5*df.num4**2 + 0.7*df.num5 - 0.4*df.num6
         + effect[df.cat0] + (df.cat1 == 0)*df.num7 + 0.3*df.cat2 + rng.normal(scale=0.3, size=n))
    for c in CATS: df[c] = 'v' + df[c].astype(str)
    for c, p in MISSING.items(): df.loc[rng.random(n) < p, c] = np.nan
    return df.assign(target=y)


def train(df, epochs=5):
    "A default `tabular_learner` with the procs `Categorify`, `FillMissing` and `Normalize`, fitted on `df`, seeded"
    set_seed(0, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=list(CATS),
                                     cont_names=CONTS, y_names='target', valid_pct=0.2, bs=512, seed=0)
    learn = tabular_learner(dls, metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    learn.model.eval()
    return learn


def encode(learn, df):
    "Category codes and continuous values of `df` as tensors, through `learn`'s procs"
    to = learn.dls.test_dl(df).dataset
    return torch.tensor(to.cats.values, dtype=torch.long), torch.tensor(to.conts.values, dtype=torch.float32)


def predict(model, cats, conts, bs=16384):
    "`model`'s predictions on `cats` and `conts`, `bs` rows at a time"
    with torch.no_grad(): return torch.cat([model(cats[i:i+bs], conts[i:i+bs]) for i in range(0, len(cats), bs)])


class UnitModel:
    "The learner's model on a matrix with one column per player: category codes, then raw continuous values (NaN: missing)"
    def __init__(self, learn, bs=16384):
        to = learn.dls.train_ds
        self.na = to.procs.fill_missing.na_dict
        self.flagged = {f'{c}_na': c for c in self.na}
        self.cat_names = [c for c in to.cat_names if c not in self.flagged]
        self.units = self.cat_names + list(to.cont_names)
        self.model_cats, self.cont_names = list(to.cat_names), list(to.cont_names)
        self.means, self.stds = to.procs.normalize.means, to.procs.normalize.stds
        self.codes = {f: [list(learn.dls.classes[f]).index(v) for v in (True, False)] for f in self.flagged}
        self.learn, self.model, self.bs, self.n_rows = learn, learn.model, bs, 0

    def matrix(self, df):
        "The player matrix of the raw rows `df`"
        codes = self.learn.dls.test_dl(df).dataset.cats[self.cat_names].to_numpy(dtype=float)
        return np.concatenate([codes, df[self.cont_names].to_numpy(dtype=float)], 1)

    def encode(self, X):
        "The model's category codes and continuous inputs for the player matrix `X`, as the learner's procs make them"
        col = {u: X[:, i] for i, u in enumerate(self.units)}
        cats = [np.where(np.isnan(col[self.flagged[c]]), *self.codes[c]) if c in self.flagged else col[c]
                for c in self.model_cats]
        conts = [(np.where(np.isnan(col[c]), self.na.get(c, 0), col[c]) - self.means[c]) / self.stds[c]
                 for c in self.cont_names]
        return torch.tensor(np.stack(cats, 1).round(), dtype=torch.long), torch.tensor(np.stack(conts, 1), dtype=torch.float32)

    def __call__(self, X):
        self.n_rows += len(X)
        return predict(self.model, *self.encode(np.asarray(X, dtype=float)), self.bs).numpy().ravel()


def player_columns(unit_model):
    "0/1 matrices mapping each player to the model's categorical and continuous input columns"
    um = unit_model
    cat = torch.zeros(len(um.units), len(um.model_cats))
    cont = torch.zeros(len(um.units), len(um.cont_names))
    for p, u in enumerate(um.units):
        if u in um.cont_names:
            cont[p, um.cont_names.index(u)] = 1
            if f'{u}_na' in um.flagged: cat[p, um.model_cats.index(f'{u}_na')] = 1
        else: cat[p, um.model_cats.index(u)] = 1
    return cat, cont


def coalitions(n):
    "Every subset of `n` players as a boolean row, subset `s` holding player `i` when bit `i` of `s` is set"
    return ((torch.arange(2**n)[:, None] >> torch.arange(n)) & 1).bool()


def coalition_values(model, x, bg, cat_players, cont_players, chunk_rows=4096):
    "Per explained row of `x` (cats, conts), the mean prediction over `bg` with each coalition's columns from the row"
    (x_cats, x_conts), (b_cats, b_conts) = x, bg
    bits = coalitions(len(cat_players)).float()
    cat_mask, cont_mask = (bits @ cat_players).bool()[:, None], (bits @ cont_players).bool()[:, None]
    chunk, nb = max(1, chunk_rows // len(b_cats)), len(b_cats)
    v = torch.empty(len(x_cats), len(bits), dtype=torch.float64)
    with torch.no_grad():
        for r in range(len(x_cats)):
            for s in range(0, len(bits), chunk):
                cats = torch.where(cat_mask[s:s+chunk], x_cats[r], b_cats).reshape(-1, b_cats.shape[1])
                conts = torch.where(cont_mask[s:s+chunk], x_conts[r], b_conts).reshape(-1, b_conts.shape[1])
                v[r, s:s+chunk] = model(cats, conts).view(-1, nb).mean(1).double()
    return v


def shapley_from_values(v, n):
    "Shapley values (rows x `n`) from the values `v` (rows x 2^n) of every coalition"
    bits = coalitions(n)
    size = bits.sum(1)
    w = torch.tensor([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)],
                     dtype=torch.float64)
    idx = torch.arange(2**n)
    phi = torch.empty(len(v), n, dtype=torch.float64)
    for i in range(n):
        without = idx[~bits[:, i]]
        phi[:, i] = ((v[:, without | (1 << i)] - v[:, without]) * w[size[without]]).sum(1)
    return phi


def exact_shapley(learn, unit_model, rows, bg):
    "Exact interventional Shapley values of `rows` against `bg`, with their efficiency gap"
    cat_players, cont_players = player_columns(unit_model)
    v = coalition_values(learn.model, encode(learn, rows), encode(learn, bg), cat_players, cont_players)
    phi = shapley_from_values(v, len(unit_model.units))
    gap = (phi.sum(1) - (v[:, -1] - v[:, 0])).abs().max().item()
    return phi.numpy(), gap


def shap_way(unit_model, X, bg, max_evals=500):
    "shap's `PermutationExplainer` with `max_evals` evaluations per row (its default 500), players as units"
    masker = shap.maskers.Independent(bg, max_samples=len(bg))
    return shap.PermutationExplainer(unit_model, masker, seed=0)(X, max_evals=max_evals, silent=True).values


def ours(learn, rows, bg):
    "This package's Shapley values"
    return learn.shap_values(df=rows, background=bg, seed=0, show_progress=False)


def rel_error(estimate, exact): return np.abs(estimate - exact).mean() / np.abs(exact).mean()


def main(n_rows, n_background, n_exact, runs, shap_evals, n_train=8000):
    torch.set_num_threads(1)
    df = make_data(n_train + n_rows)
    learn = train(df.iloc[:n_train])
    rows = df.iloc[n_train:].drop(columns='target')
    bg = df.iloc[:n_train].sample(n_background, random_state=0).drop(columns='target')
    um = UnitModel(learn)
    X, B = um.matrix(rows), um.matrix(bg)
    with learn.no_bar(): preds = learn.get_preds(dl=learn.dls.test_dl(rows))[0].numpy().ravel()
    print(f"torch {torch.__version__}; {len(um.units)} players: {', '.join(um.units)}; "
          f"{len(rows)} rows explained against {len(bg)} background rows")
    print(f"player-matrix wrapper vs `learn.get_preds`: max |difference| {np.abs(um(X) - preds).max():.2e}")

    start = CLOCK()
    exact, gap = exact_shapley(learn, um, rows.iloc[:n_exact], bg)
    t_exact = CLOCK() - start
    print(f"exact on {n_exact} rows: {t_exact:.1f} s; efficiency gap max {gap:.1e}; mean |value| {np.abs(exact).mean():.4f}")
    found = {}
    def keep(name, f): return lambda: found.__setitem__(name, f())
    contenders = {'shap': keep('shap', lambda: shap_way(um, X, B))}
    more = f'shap, max_evals={shap_evals}'
    if shap_evals: contenders[more] = keep(more, lambda: shap_way(um, X, B, shap_evals))
    if hasattr(learn, 'shap_values'):
        contenders['ours'] = keep('ours', lambda: ours(learn, rows, bg).values[um.units].to_numpy())
    um.n_rows = 0
    t = race(contenders, runs, CLOCK)
    print(f"shap evaluated {um.n_rows // runs:,} model rows per round")

    print(f"\nCPU seconds, best of {runs} rounds, one torch thread; error on the first {n_exact} rows\n")
    print(f"| tool | time ({len(rows)} rows) | error vs exact | time / shap's |\n|---|---|---|---|")
    print(f"| exact, all 2^{len(um.units)} coalitions | {t_exact * len(rows) / n_exact:.0f} s (from {n_exact} rows) | 0 | |")
    for name in t:
        print(f"| {name} | {t[name]:.2f} s | {rel_error(found[name][:n_exact], exact):.4f} | {t[name] / t['shap']:.2f} |")
    if 'ours' not in t: print("\nours skipped: the learner has no `shap_values` yet")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=200)
    p.add_argument('--background', type=int, default=100)
    p.add_argument('--exact-rows', type=int, default=20)
    p.add_argument('--runs', type=int, default=2)
    p.add_argument('--shap-evals', type=int, default=1500, help="shap's budget for a second run nearer our accuracy; 0: none")
    p.add_argument('--quick', action='store_true', help='a smoke run: 20 rows, 20 background rows, 3 exact, 1 round')
    a = p.parse_args()
    if a.quick: a.rows, a.background, a.exact_rows, a.runs, a.shap_evals = 20, 20, 3, 1, 0
    main(a.rows, a.background, a.exact_rows, a.runs, a.shap_evals)
