"""Permutation importance (`metric='loss'`) against the floor, the bare forward pass over every perturbed row, as ratios.

The floor runs the bare model over (features x repeats + 1) x rows rows of data encoded beforehand, at the fastest
of a few batch sizes; ours is `learn.permutation_importance(df=..., metric='loss', n_repeats=..., seed=0,
show_progress=False)`, raw rows in, encoding included. Where the model is a bare fastai `TabularModel`, ours
evaluates in the first layer's space (the engine's split) and so can run below the floor; a custom `nn.Module`
and a callback with batch handlers make it run the whole model, where the target is to stay near the floor.
The networks are untrained (randomly initialised): the time does not depend on the weights. One torch thread; the
contenders take turns, `--runs` rounds, each reports its best round in CPU seconds of the process. Writes the table
to `benchmarks/results/engine.md`. Run: `python benchmarks/engine.py` (`--quick`: a smoke run on small sizes).
"""
import argparse, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
SIZES = (1024, 2048, 4096, 8192, 16384, 32768)
CLOCK = time.process_time
RESULTS = Path(__file__).parent/'results'/'engine.md'


def make_data(n, n_cont, n_cat, seed=0):
    "A regression frame with `n_cont` continuous and `n_cat` categorical (8 levels) features"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, n_cont)).astype(np.float32), columns=[f'num{i}' for i in range(n_cont)])
    for i in range(n_cat): df[f'cat{i}'] = rng.choice([f'v{j}' for j in range(8)], n)
    df['target'] = df[[f'num{i}' for i in range(min(n_cont, 10))]].to_numpy() @ rng.normal(size=min(n_cont, 10)) + rng.normal(size=n)
    return df


def learner(df, layers):
    "An untrained `tabular_learner` with `layers` on `df` (the last 1,000 rows held out)"
    cats, conts = [c for c in df if c.startswith('cat')], [c for c in df if c.startswith('num')]
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=cats, cont_names=conts,
                                     y_names='target', valid_idx=list(range(len(df)-1000, len(df))), bs=1024)
    return tabular_learner(dls, layers=layers)


class Wrapped(Module):
    "A custom model: the same `TabularModel` inside a module of its own"
    def __init__(self, inner): self.inner = inner
    def forward(self, cats, conts): return self.inner(cats, conts)


class BatchHook(Callback):
    "A callback with a batch handler, doing nothing"
    def before_batch(self): pass


def encode(learn, df):
    "Category codes and continuous values of `df` as tensors, through `learn`'s procs"
    to = learn.dls.test_dl(df).dataset
    return torch.tensor(to.cats.values, dtype=torch.long), torch.tensor(to.conts.values, dtype=torch.float32)


def forward(model, cats, conts, bs):
    with torch.no_grad(): return [model(cats[i:i+bs], conts[i:i+bs]) for i in range(0, len(cats), bs)]


def best_bs(model, cats, conts, runs):
    times = race({bs: lambda bs=bs: forward(model, cats, conts, bs) for bs in SIZES if bs < 2*len(cats)}, runs, CLOCK)
    return min(times, key=times.get)


def case(name, layers, rows, n_cont, n_cat, repeats, runs, how='split'):
    "Times of ours and the floor on one network and data set; `how`: 'split', 'custom' (model) or 'callback'"
    df = make_data(rows + 1000, n_cont, n_cat)
    learn = learner(df, layers)
    if how == 'custom': learn = TabularLearner(learn.dls, Wrapped(learn.model), loss_func=learn.loss_func)
    if how == 'callback': learn.add_cb(BatchHook())
    data = df.iloc[:rows]
    model = learn.model.eval()
    cats, conts = encode(learn, data)
    bs = best_bs(model, cats, conts, runs)
    n_passes = (n_cont + n_cat)*repeats + 1
    def ours(): learn.permutation_importance(df=data, metric='loss', n_repeats=repeats, seed=0, show_progress=False)
    def floor():
        for _ in range(n_passes): forward(model, cats, conts, bs)
    t = race({'ours': ours, 'floor': floor}, runs, CLOCK)
    return dict(name=name, layers=layers, shape=f"{rows:,} × {n_cont + n_cat} × {repeats}", bs=bs, **t)


CASES = [  # name, layers, rows, continuous, categorical, repeats, how, target
    ('20 features', [64, 32], 100_000, 15, 5, 5, 'split', 0.70),
    ('20 features', [200, 100], 100_000, 15, 5, 5, 'split', 0.85),
    ('20 cat + 80 cont', [200, 100], 20_000, 80, 20, 1, 'split', 0.50),
    ('1,000 continuous', [200, 100], 10_000, 1000, 0, 1, 'split', 0.15),
    ('20 features, small', [64, 32], 10_000, 15, 5, 1, 'split', 1.2),
    ('custom nn.Module', [64, 32], 100_000, 15, 5, 1, 'custom', 1.15),
    ('batch callback', [64, 32], 100_000, 15, 5, 1, 'callback', 1.15),
    ('custom nn.Module', [64, 32], 100_000, 15, 5, 5, 'custom', 1.15),
    ('batch callback', [64, 32], 100_000, 15, 5, 5, 'callback', 1.15),
]


def main(runs, quick, only=None):
    torch.set_num_threads(1)
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} thread; best of {runs} rounds in turns, CPU seconds\n",
             "| data | layers | rows × features × repeats | path | ours | floor (batch size) | ours/floor | target |",
             "|---|---|---|---|---|---|---|---|"]
    print('\n'.join(lines), flush=True)
    for i, (name, layers, rows, n_cont, n_cat, repeats, how, target) in enumerate(CASES):
        if only and i not in only: continue
        if quick: rows = min(rows, 3000)
        t = case(name, layers, rows, n_cont, n_cat, repeats, runs, how)
        path = 'first-layer split' if how == 'split' else 'whole model'
        line = (f"| {name} | {layers} | {t['shape']} | {path} | {t['ours']:.2f} s | {t['floor']:.2f} s ({t['bs']:,}) "
                f"| {t['ours']/t['floor']:.2f} | <= {target} |")
        lines.append(line); print(line, flush=True)
    if not (quick or only): RESULTS.write_text("# Permutation importance against the bare forward pass\n\n`python benchmarks/engine.py`\n\n" + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--only', type=int, nargs='*', help='run only these cases (0-based), writing nothing')
    p.add_argument('--quick', action='store_true', help='a smoke run: at most 3,000 rows, 1 round, nothing written')
    a = p.parse_args()
    main(1 if a.quick else a.runs, a.quick, a.only)
