"""Accumulated local effects of one continuous feature: ours against PyALE, alibi and effector, on the same model and rows.

One `tabular_learner` (layers [200, 100]) on 5,000 rows of four continuous features (`x1` correlated with `x0`), a
nonlinear target; procs `Normalize` only, so a peer needs no more than a matrix of raw values. The peers call the
same network through a wrapper that normalises the raw matrix as the learner's proc does and runs the model in eval
mode. The rows are the 5,000 training rows as the learner sees them (raw values decoded from its float32 encoding,
so that every contender bins exactly the same numbers).

- equality: the ALE of `x0` at its bin edges (20 quantile bins). PyALE uses the same edges by construction (its
  type-1 quantiles); alibi is given our edges as `grid_points`. Reported: max |ours - peer| over the edges, divided
  by the range of our curve (target: at most 1e-3).
- time: each contender from the raw rows to the centred curve, one torch thread, in turns, best of `--runs` rounds.
  effector: `ALE(X, f, nof_instances='all').fit([0])` (its default 20 equal-width bins; 10,000 model rows like
  ours); PyALE without its confidence intervals; alibi with our grid. Also timed: the network alone on the 10,000
  rows, 5,000 a call as effector calls it, the floor every contender pays. Times are CPU seconds of the process
  (`time.process_time`): on a shared machine, time spent waiting for a core is not the contender's. `ours, from a
  ready dl` takes the rows already through `learn.dls.test_dl`, which shows what encoding the frame costs.

Run: `python benchmarks/ale.py` (with PyALE and effector installed: `pip install -e '.[bench]'`). alibi 0.9.6 pins
numpy < 2 and pandas < 3, so pip would downgrade the stack; it was installed beside it without its pins
(`pip install --no-deps --target DIR alibi==0.9.6 dill scikit-image lazy_loader imageio tifffile`, then
`PYTHONPATH=DIR`). Writes `benchmarks/results/ale.md`.
"""
import argparse, platform, sys, time, warnings
from importlib import metadata
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
FEATURES = ['x0', 'x1', 'x2', 'x3']


def make_data(n=5000, seed=0):
    "Four continuous features, `x1` correlated with `x0`, and a nonlinear target with an interaction"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: rng.normal(size=n) for f in FEATURES})
    df['x1'] = 0.8*df.x0 + 0.6*df.x1
    df['y'] = np.sin(2*df.x0) + df.x0*df.x2 + 0.5*df.x1**2 + 0.3*df.x3 + rng.normal(0, .1, n)
    return df


def train(df, epochs=5):
    "A [200, 100] `tabular_learner` on `df`, seeded"
    set_seed(0, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=FEATURES, y_names='y', valid_pct=0.2, seed=0, bs=256)
    learn = tabular_learner(dls, layers=[200, 100])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn


class Wrapped:
    "The learner's network on a raw matrix of `FEATURES`, normalised as its `Normalize` proc does"
    def __init__(self, learn):
        means,stds = normalization(learn.dls.train_ds)
        self.model = learn.model.eval()
        self.means,self.stds = [np.array([d[f] for f in FEATURES], dtype=np.float32) for d in (means, stds)]
    def __call__(self, X):
        conts = torch.as_tensor((np.asarray(X, dtype=np.float32) - self.means)/self.stds)
        with torch.no_grad(): return self.model(torch.zeros(len(conts), 0, dtype=torch.long), conts).numpy()
    def predict(self, X): return self(X).ravel()


def as_seen(learn, df):
    "`df`'s features as the learner sees them, decoded back to raw float64 values"
    means,stds = normalization(learn.dls.train_ds)
    out = df.copy()
    for f in FEATURES: out[f] = ((df[f].to_numpy() - means[f])/stds[f]).astype(np.float32).astype(np.float64)*stds[f] + means[f]
    return out


def markdown(table):
    "`table` as a Markdown table, numbers to 3 significant digits"
    cell = lambda v: f'{v:.3g}' if isinstance(v, float) else str(v)
    lines = ['| ' + ' | '.join(table.columns) + ' |', '|' + '---|'*len(table.columns)]
    return '\n'.join(lines + ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in table.itertuples(index=False)])


def version(p):
    try: return metadata.version(p)
    except metadata.PackageNotFoundError: return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=30)
    parser.add_argument('--out', default=str(Path(__file__).parent/'results'/'ale.md'))
    args = parser.parse_args()
    torch.set_num_threads(1)
    df = make_data()
    learn = train(df)
    X = as_seen(learn, df[FEATURES])
    f = Wrapped(learn)
    ours = lambda: learn.accumulated_local_effects('x0', df=X, bins=20, show_progress=False)
    ale = ours()
    res = ale.results
    span = res.y.max() - res.y.min()
    rows,contenders,notes = [],{'ours': ours},[]
    rows.append(('ours', 'fastai_featimp', 0.0, len(res)))
    try:
        from PyALE import ale as pyale
        run_pyale = lambda: pyale(X=X, model=f, feature=['x0'], grid_size=20, include_CI=False, plot=False)
        p = run_pyale()
        same_edges = np.array_equal(p.index.to_numpy(), res.x0.to_numpy())
        rows.append(('PyALE', version('PyALE'), np.abs(p.eff.to_numpy() - res.y.to_numpy()).max()/span if same_edges else np.nan, len(p)))
        if not same_edges: notes.append(f'PyALE chose other edges: {p.index.to_numpy()[:5]} ...')
        contenders['PyALE'] = run_pyale
    except Exception as e: notes.append(f'PyALE: {type(e).__name__}: {e}')
    try:
        from alibi.explainers import ALE as AlibiALE
        run_alibi = lambda: AlibiALE(f, feature_names=FEATURES, target_names=['y']).explain(X.to_numpy(), features=[0], grid_points={0: res.x0.to_numpy()})
        try: a = run_alibi()
        except TypeError as e:
            if 'interpolation' not in str(e): raise
            notes.append(f'alibi {version("alibi")} fails on numpy {np.__version__}: `{e}`; it ran with a shim that passes '
                         f'`np.percentile(..., interpolation=)` on as `method=`, the name numpy 2 kept')
            percentile = np.percentile
            np.percentile = lambda *a, interpolation=None, **k: percentile(*a, **({'method': interpolation} if interpolation else {}), **k)
            a = run_alibi()
        values,effects = a.feature_values[0],a.ale_values[0][:, 0]
        same = len(values)==len(res) and np.allclose(values, res.x0)
        rows.append(('alibi', version('alibi'), np.abs(effects - res.y.to_numpy()).max()/span if same else np.nan, len(values)))
        contenders['alibi'] = run_alibi
    except Exception as e: notes.append(f'alibi {version("alibi")} fails here: {type(e).__name__}: {str(e)[:200]}')
    Xn = X.to_numpy()
    try:
        import effector
        def run_effector():
            e = effector.ALE(Xn, f.predict, nof_instances='all'); e.fit([0]); return e
        run_effector()
        rows.append(('effector', version('effector'), np.nan, 21))
        contenders['effector'] = run_effector
    except Exception as e: notes.append(f'effector: {type(e).__name__}: {str(e)[:200]}')
    ready = learn.dls.test_dl(X)
    contenders['ours, from a ready `dl`'] = lambda: learn.accumulated_local_effects('x0', dl=ready, bins=20, show_progress=False)
    contenders['network alone, 2 x 5,000 rows'] = lambda: [f.predict(Xn) for _ in range(2)]
    times = race(contenders, args.runs, time.process_time)
    table = pd.DataFrame(rows, columns=['contender', 'version', 'max abs diff / range', 'edges'])
    table.loc[len(table)] = ('ours, from a ready `dl`', 'fastai_featimp', np.nan, len(res))
    table.loc[len(table)] = ('network alone, 2 x 5,000 rows', '', np.nan, 0)
    table['seconds'] = table.contender.map(times)
    table['time / ours'] = table.seconds/times['ours']
    md = [f"# Accumulated local effects: ours against PyALE, alibi and effector\n",
          f"`python benchmarks/ale.py` on {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__}, torch {torch.__version__}, one torch thread, best of {args.runs} rounds in turns, CPU seconds. "
          f"5,000 rows, a [200, 100] `tabular_learner`, the ALE of `x0` (20 quantile bins; range of our curve {span:.3f}).\n",
          markdown(table), '']
    if 'effector' in times:
        md.append(f"Ours takes {times['ours']/times['effector']:.2f} of effector's time (target: at most 1).")
    md.append("The network alone is the floor effector sits on (it calls the network on the same 10,000 rows, 5,000 at a time). Ours runs "
              "only the network after its first layer (the first-layer split, built and checked once per state of the model) and adds "
              "the encoding of the frame (compare the ready `dl`) and the engine's fixed costs.")
    md += [f'- {n}' for n in notes]
    text = '\n'.join(md) + '\n'
    Path(args.out).write_text(text)
    print(text)


if __name__ == '__main__': main()
