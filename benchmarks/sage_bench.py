"""SAGE, global Shapley values of the loss: ours against the `sage-importance` package, time and agreement.

The learner, data and 15 players of `shapley.py` (a category code is one player, a continuous value with its `_na`
flag another). `--rows` labelled held-out rows are explained against `--background` training rows.

- sage-importance: `PermutationEstimator` with a `MarginalImputer` over the background and the mean squared
  error (the learner's loss), on the player matrix and wrapper of `shapley.py`, stopping at its convergence
  threshold `--thresh` (its default: the largest standard error below 0.025 of the spread of the values)
- ours: `learn.sage_importance(df=rows, background=bg, seed=0, threshold=...)`, when the package has it, with the
  same convergence threshold

Both report a standard error per player (ours in the `std_error` column); two estimates agree when they differ by at most twice the standard
error of their difference. One torch thread, CPU seconds of the process, best of `--runs` rounds taken in turns.
Run: `python benchmarks/sage_bench.py` (`--quick`: a smoke run); named so because a `sage.py` here would hide the
`sage` package.
"""
import argparse, warnings
import numpy as np, pandas as pd, torch, sage
from shapley import make_data, train, UnitModel, CLOCK
from timing import race

warnings.filterwarnings('ignore')


def sage_way(unit_model, X, Y, B, thresh):
    "sage-importance's permutation estimate of SAGE values, with marginal imputation over `B`"
    est = sage.PermutationEstimator(sage.MarginalImputer(unit_model, B), 'mse', random_state=0)
    return est(X, Y, thresh=thresh, bar=False)


def ours(learn, rows, bg, thresh):
    "This package's SAGE values and their standard errors, indexed by feature"
    res = learn.sage_importance(df=rows, background=bg, seed=0, threshold=thresh, show_progress=False)
    return res.results.set_index('feature')[['importance', 'std_error']]


def markdown(table):
    "`table` as a markdown table, numbers to 4 significant digits"
    cell = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
    lines = ['| player | ' + ' | '.join(table.columns) + ' |', '|---' * (len(table.columns) + 1) + '|']
    return '\n'.join(lines + [f'| {i} | ' + ' | '.join(cell(v) for v in r) + ' |' for i, r in zip(table.index, table.values)])


def main(n_rows, n_background, thresh, runs, n_train=8000):
    torch.set_num_threads(1)
    df = make_data(n_train + n_rows)
    learn = train(df.iloc[:n_train])
    rows, bg = df.iloc[n_train:], df.iloc[:n_train].sample(n_background, random_state=0)
    um = UnitModel(learn)
    X, Y, B = um.matrix(rows), rows.target.to_numpy(dtype=float), um.matrix(bg)
    print(f"torch {torch.__version__}; {len(um.units)} players; {len(rows):,} rows, {len(bg)} background rows, "
          f"threshold {thresh}")

    found = {}
    def keep(name, f): return lambda: found.__setitem__(name, f())
    contenders = {'sage': keep('sage', lambda: sage_way(um, X, Y, B, thresh))}
    has_ours = hasattr(learn, 'sage_importance')
    if has_ours: contenders['ours'] = keep('ours', lambda: ours(learn, rows, bg, thresh))
    t = race(contenders, runs, CLOCK)
    print(f"sage-importance evaluated {um.n_rows // runs:,} model rows per run\n")

    table = pd.DataFrame({'sage': found['sage'].values, 'sage_se': found['sage'].std}, index=um.units)
    if has_ours:
        table = table.join(found['ours'].rename(columns={'importance': 'ours', 'std_error': 'ours_se'}))
        table['z'] = (table.ours - table.sage) / np.hypot(table.sage_se, table.ours_se)
        table['agree'] = table.z.abs() <= 2
    print(markdown(table.sort_values('sage', ascending=False)))
    print(f"\nCPU seconds, best of {runs} rounds, one torch thread\n\n| tool | time | time / sage-importance's |\n|---|---|---|")
    for name in t: print(f"| {name} | {t[name]:.1f} s | {t[name] / t['sage']:.3f} |")
    if not has_ours: print("\nours skipped: the learner has no `sage_importance` yet")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=5000)
    p.add_argument('--background', type=int, default=100)
    p.add_argument('--thresh', type=float, default=0.025)
    p.add_argument('--runs', type=int, default=1)
    p.add_argument('--quick', action='store_true', help='a smoke run: 500 rows, 20 background rows, threshold 0.1')
    a = p.parse_args()
    if a.quick: a.rows, a.background, a.thresh = 500, 20, 0.1
    main(a.rows, a.background, a.thresh, a.runs)
