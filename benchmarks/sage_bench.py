"""SAGE, global Shapley values of the loss: ours against the `sage-importance` package, time and agreement.

The learner, data and 15 players of `shapley.py` (a category code is one player, a continuous value with its `_na`
flag another). `--rows` labelled held-out rows are explained against `--background` training rows.

- sage-importance: `PermutationEstimator` with a `MarginalImputer` over the background and the mean squared
  error (the learner's loss), on the player matrix and wrapper of `shapley.py`, stopping at its convergence
  threshold `--thresh` (its default: the largest standard error below 0.025 of the spread of the values)
- ours: `learn.sage_importance(df=rows, background=bg, seed=0, tol=...)` with the
  same convergence threshold as its `tol` (its default `n_draws` for the squared error: three background rows drawn per
  permutation pair, jackknifed)
- reference (not timed): ours with every coalition averaged over the whole background (`n_draws=len(bg)`) and
  `--ref-rounds` visits of every row (two antithetic pairs each), far more precise than either contender: each
  contender's z-score against it says whether its error matches the standard error it reports

Both report a standard error per player (ours in the `std_error` column); two estimates agree when they differ by at most twice the standard
error of their difference. One torch thread, CPU seconds of the process, best of `--runs` rounds taken in turns.
Run: `python benchmarks/sage_bench.py` (`--quick`: a smoke run, written nowhere); named so because a `sage.py` here
would hide the `sage` package. Writes `benchmarks/results/sage.md` with the default 100 background rows, else
`benchmarks/results/sage_bg{N}.md`.
"""
import argparse, datetime, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch, sage
from shapley import make_data, train, UnitModel, CLOCK
from timing import race

warnings.filterwarnings('ignore')


def sage_way(unit_model, X, Y, B, thresh):
    "sage-importance's permutation estimate of SAGE values, with marginal imputation over `B`"
    est = sage.PermutationEstimator(sage.MarginalImputer(unit_model, B), 'mse', random_state=0)
    return est(X, Y, thresh=thresh, bar=False)


def ours(learn, rows, bg, thresh, seed=0):
    "This package's SAGE values and their standard errors, indexed by feature"
    res = learn.sage_importance(df=rows, background=bg, seed=seed, tol=thresh, show_progress=False)
    return res.results.set_index('feature')[['importance', 'std_error']]


def reference(learn, rows, bg, rounds):
    "SAGE values with exact imputation and every row visited `rounds` times, with their standard errors"
    res = learn.sage_importance(df=rows, background=bg, seed=1, n_permutations=4*rounds*len(rows), n_draws=len(bg),
                                show_progress=False)
    return res.results.set_index('feature')[['importance', 'std_error']]


def markdown(table):
    "`table` as a markdown table, numbers to 4 significant digits"
    cell = lambda v: f'{v:.4g}' if isinstance(v, float) else str(v)
    lines = ['| player | ' + ' | '.join(table.columns) + ' |', '|---' * (len(table.columns) + 1) + '|']
    return '\n'.join(lines + [f'| {i} | ' + ' | '.join(cell(v) for v in r) + ' |' for i, r in zip(table.index, table.values)])


def z_scores(est, ref):
    "How many standard errors of their difference each estimate of `est` is from `ref`'s (both: importance, std_error)"
    est = est.loc[ref.index]
    return (est.importance - ref.importance) / np.hypot(est.std_error, ref.std_error)


def calibration(learn, rows, bg, thresh, ref, seeds):
    "RMS z-score of ours against the reference over `seeds` further seeds: 1 when the reported standard errors match the errors"
    z = [z_scores(ours(learn, rows, bg, thresh, seed), ref) for seed in range(1000, 1000 + seeds)]
    return float(np.sqrt((np.array(z)**2).mean()))


def main(n_rows, n_background, thresh, runs, ref_rounds, seeds, n_train=8000):
    "The race and its tables, printed; returns the lines printed"
    lines = []
    def say(s=''): print(s, flush=True); lines.append(s)
    torch.set_num_threads(1)
    df = make_data(n_train + n_rows)
    learn = train(df.iloc[:n_train])
    rows, bg = df.iloc[n_train:], df.iloc[:n_train].sample(n_background, random_state=0)
    um = UnitModel(learn)
    X, Y, B = um.matrix(rows), rows.target.to_numpy(dtype=float), um.matrix(bg)
    say(f"torch {torch.__version__}; {len(um.units)} players; {len(rows):,} rows, {len(bg)} background rows, "
          f"threshold {thresh}")

    found = {}
    def keep(name, f): return lambda: found.__setitem__(name, f())
    contenders = {'sage': keep('sage', lambda: sage_way(um, X, Y, B, thresh))}
    has_ours = hasattr(learn, 'sage_importance')
    if has_ours: contenders['ours'] = keep('ours', lambda: ours(learn, rows, bg, thresh))
    t = race(contenders, runs, CLOCK)
    say(f"sage-importance evaluated {um.n_rows // runs:,} model rows per run\n")

    table = pd.DataFrame({'sage': found['sage'].values, 'sage_se': found['sage'].std}, index=um.units)
    if has_ours:
        table = table.join(found['ours'].rename(columns={'importance': 'ours', 'std_error': 'ours_se'}))
        table['z'] = (table.ours - table.sage) / np.hypot(table.sage_se, table.ours_se)
        table['agree'] = table.z.abs() <= 2
        if ref_rounds:
            ref = reference(learn, rows, bg, ref_rounds)
            table = table.join(ref.rename(columns={'importance': 'ref', 'std_error': 'ref_se'}))
            for c in ('sage', 'ours'): table[f'z_{c}_ref'] = (table[c] - table.ref) / np.hypot(table[f'{c}_se'], table.ref_se)
    say(markdown(table.sort_values('sage', ascending=False)))
    say(f"\nCPU seconds, best of {runs} rounds, one torch thread\n\n| tool | time | time / sage-importance's |\n|---|---|---|")
    for name in t: say(f"| {name} | {t[name]:.1f} s | {t[name] / t['sage']:.3f} |")
    if not has_ours: say("\nours skipped: the learner has no `sage_importance` yet")
    elif ref_rounds:
        rms = lambda z: float(np.sqrt((z**2).mean()))
        say(f"\nagainst the reference: RMS z-score sage {rms(table.z_sage_ref):.2f}, ours {rms(table.z_ours_ref):.2f} "
              f"(1 when the reported standard errors match the errors); max |z| sage {table.z_sage_ref.abs().max():.2f}, "
              f"ours {table.z_ours_ref.abs().max():.2f}")
        if seeds: say(f"ours over {seeds} further seeds: RMS z-score {calibration(learn, rows, bg, thresh, ref, seeds):.2f}")
    return lines


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=5000)
    p.add_argument('--background', type=int, default=100)
    p.add_argument('--thresh', type=float, default=0.025)
    p.add_argument('--runs', type=int, default=1)
    p.add_argument('--ref-rounds', type=int, default=2, help='visits of every row for the reference; 0: none')
    p.add_argument('--seeds', type=int, default=16, help='further seeds of ours against the reference, for calibration')
    p.add_argument('--quick', action='store_true', help='a smoke run: 500 rows, 20 background rows, threshold 0.1')
    a = p.parse_args()
    if a.quick: a.rows, a.background, a.thresh, a.seeds = 500, 20, 0.1, 2
    lines = main(a.rows, a.background, a.thresh, a.runs, a.ref_rounds, a.seeds)
    if not a.quick:
        out = Path(__file__).parent/'results'/('sage.md' if a.background == 100 else f'sage_bg{a.background}.md')
        command = ' '.join(['python benchmarks/sage_bench.py'] + sys.argv[1:])
        out.write_text(f"# `{command}` ({datetime.date.today()})\n\n" + '\n'.join(lines) + '\n')
        print(f"\nwritten to {out}")
