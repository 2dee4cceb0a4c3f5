"""Interactions: Friedman's H against pyartemis, SHAP interaction values against shap's `Exact` explainer.

The model of issue 18: y = x0 + 2·x1·x2 + effect(c0) + noise, with 12 features (x0..x9, `x0_copy` = x0 plus a
little noise, the categorical `c0`), a `tabular_learner` [200, 100] fitted on 5,000 rows.

- H: `learn.interaction_strength(df=rows, n_rows=500)` against pyartemis's `FriedmanHStatisticMethod` on the same
  500 held-out rows (pyartemis averages each partial dependence over all 500 rows; ours, by default, over a
  background of 100 of them in ten groups); a player-matrix wrapper feeds pyartemis the learner's encoding.
- SHAP interaction values: a [200, 100] learner on six of those features (`--players`), `--shap-rows` rows against
  `--shap-background` background rows; `learn.shap_values(..., interactions=True)` against
  `shap.explainers.Exact(model, Independent(background))(X, interactions=True)` and a brute-force enumeration.

One torch thread; contenders take turns, best of `--runs` rounds, CPU seconds of the process.
Run: `python benchmarks/interactions.py` (`--quick`: a smoke run), writes `benchmarks/results/interactions.md` with `--write`.
"""
import argparse, itertools, math, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race
from shapley import UnitModel, coalitions, coalition_values, player_columns, encode

warnings.filterwarnings('ignore')
CLOCK = time.process_time
CONTS = [f'x{i}' for i in range(10)] + ['x0_copy']


def make_data(n, seed=0):
    "The synthetic regression of issue 18, with a near copy of x0"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in CONTS[:-1]})
    df['x0_copy'] = df.x0 + 0.1*rng.normal(size=n)
    df['c0'] = rng.choice(list('abcd'), n)
    df['y'] = df.x0 + 2*df.x1*df.x2 + df.c0.map(dict(a=-1., b=0., c=0.5, d=1.)) + 0.1*rng.normal(size=n)
    return df


def train(df, conts, cats=('c0',), epochs=6):
    "A `tabular_learner` [200, 100] fitted on `df`, seeded"
    set_seed(0, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=list(cats), cont_names=list(conts),
                                     y_names='y', valid_idx=list(range(len(df) - 1000, len(df))), bs=256)
    learn = tabular_learner(dls, layers=[200, 100], metrics=rmse)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn


class Frame:
    "The learner's model on a DataFrame of player columns (for pyartemis, which calls `predict`)"
    def __init__(self, um): self.um = um
    def predict(self, X): return self.um(X.to_numpy(dtype=float))


def artemis_h(um, X):
    "pyartemis's Friedman H of every pair, its overall H, and its model rows"
    from artemis.interactions_methods.model_agnostic import FriedmanHStatisticMethod
    h = FriedmanHStatisticMethod()
    h.fit(Frame(um), pd.DataFrame(X, columns=um.units), show_progress=False)
    return h


def shap_interactions_brute(learn, um, rows, bg):
    """Interaction values by enumeration of every coalition's mean prediction over `bg`: Lundberg et al.'s SHAP
    interaction values (half the Shapley interaction index off the diagonal, phi_i minus the row's others on it), and
    the index shap's `Exact` explainer computes (weights |S|!(M-|S|-1)!/M! on the same second differences, and the
    main effect v({i}) - v({}) on the diagonal)"""
    cat_p, cont_p = player_columns(um)
    v = coalition_values(learn.model, encode(learn, rows), encode(learn, bg), cat_p, cont_p).numpy()
    m, f = len(um.units), math.factorial
    ours, shaps = np.zeros((len(v), m, m)), np.zeros((len(v), m, m))
    for i, j in itertools.combinations(range(m), 2):
        for s in range(2**m):
            if s >> i & 1 or s >> j & 1: continue
            k = bin(s).count('1')
            d = v[:, s | 1 << i | 1 << j] - v[:, s | 1 << i] - v[:, s | 1 << j] + v[:, s]
            ours[:, i, j] += f(k)*f(m - k - 2)/(2*f(m - 1))*d
            shaps[:, i, j] += f(k)*f(m - k - 1)/f(m)*d
        ours[:, j, i], shaps[:, j, i] = ours[:, i, j], shaps[:, i, j]
    for i in range(m):
        without = [s for s in range(2**m) if not s >> i & 1]
        k = np.array([bin(s).count('1') for s in without])
        phi = ((v[:, [s | 1 << i for s in without]] - v[:, without])*np.array([f(a)*f(m - a - 1)/f(m) for a in k])).sum(1)
        ours[:, i, i] = phi - ours[:, i].sum(1)
        shaps[:, i, i] = v[:, 1 << i] - v[:, 0]
    return ours, shaps


def main(n_rows, shap_rows, shap_bg, runs, quick, write):
    torch.set_num_threads(1)
    lines = []
    def say(s=''): print(s); lines.append(s)
    df = make_data(6000)
    learn = train(df if not quick else df.iloc[3000:], CONTS, epochs=6 if not quick else 2)  # fitted on 5,000 rows, the last 1,000 held out
    rows = df.iloc[5000:5000 + n_rows].drop(columns='y') if not quick else df.iloc[-n_rows:].drop(columns='y')
    um = UnitModel(learn)
    X = um.matrix(rows)
    say(f"torch {torch.__version__}; {len(um.units)} features; H on {len(rows)} rows; one torch thread, best of {runs} rounds, CPU s\n")
    found = {}
    def keep(name, f): return lambda: found.__setitem__(name, f())
    contenders = {'pyartemis': keep('pyartemis', lambda: artemis_h(um, X)),
                  'ours': keep('ours', lambda: learn.interaction_strength(df=rows, n_rows=n_rows, seed=0, show_progress=False))}
    um.n_rows = 0
    t = race(contenders, runs, CLOCK)
    art_rows = um.n_rows//runs
    ours = found['ours']
    ovo = found['pyartemis'].ovo
    fcol = [c for c in ovo.columns if 'eature' in c]
    hcol = [c for c in ovo.columns if c not in fcol][0]
    art = {frozenset(r[fcol]): r[hcol] for _, r in ovo.iterrows()}
    table = ours.pairs.assign(pyartemis_h2=[art[frozenset((a, b))] for a, b in zip(ours.pairs.feature_1, ours.pairs.feature_2)])
    n_bg, n_units = ours.n_background, len(ours.names)
    our_rows = (2*n_units + n_units*(n_units - 1)//2)*n_rows*n_bg + n_rows
    say("pyartemis reports H² (its `_calculate_hstat_value` returns the ratio of sums, no square root); ours is compared as `h2`.\n")
    say(f"| tool | time | model rows | first pair (H²) | next pair (H²) |\n|---|---|---|---|---|")
    top_art = sorted(art.items(), key=lambda kv: -kv[1])
    byh = table.sort_values('h2', ascending=False)
    say(f"| pyartemis `FriedmanHStatisticMethod` | {t['pyartemis']:.1f} s | {art_rows/1e6:.1f} M | "
        f"{'·'.join(sorted(top_art[0][0]))} ({top_art[0][1]:.3f}) | {'·'.join(sorted(top_art[1][0]))} ({top_art[1][1]:.3f}) |")
    say(f"| ours, `interaction_strength` ({n_bg} background rows) | {t['ours']:.1f} s | {our_rows/1e6:.1f} M | "
        f"{byh.feature_1.iloc[0]}·{byh.feature_2.iloc[0]} ({byh.h2.iloc[0]:.3f}) | {byh.feature_1.iloc[1]}·{byh.feature_2.iloc[1]} ({byh.h2.iloc[1]:.3f}) |")
    say(f"\nTime ours / pyartemis: {t['ours']/t['pyartemis']:.3f}")
    diff = (table.h2 - table.pyartemis_h2).abs()
    undefined = table[table.h2.isna()]
    say(f"Pairs whose joint partial dependence varies no more than its noise, so that H is undefined (ours reports NaN): "
        f"{len(undefined)} of {len(table)}; pyartemis's H² on them: median {undefined.pyartemis_h2.median():.3f}, largest {undefined.pyartemis_h2.max():.3f}")
    say(f"Among the other pairs, |H² ours - H² pyartemis| > 0.05: {(diff > 0.05).sum()} of {table.h2.notna().sum()}; largest {diff.max():.3f}; "
        f"pairs flagged interacting by ours: {int(table.interacting.sum())}")
    copy = table[(table.feature_1.isin(['x0', 'x0_copy'])) & (table.feature_2.isin(['x0', 'x0_copy']))].iloc[0]
    say(f"x0 · x0_copy (near copy): H ours {copy.h:.3f} [{copy.ci_low:.3f}, {copy.ci_high:.3f}], interacting {copy.interacting}; H² ours {copy.h2:.4f}, pyartemis {copy.pyartemis_h2:.4f}")
    apart = table[diff > 0.05]
    if len(apart):
        units = sorted(set(apart.feature_1) | set(apart.feature_2))
        ref = learn.interaction_strength(df=rows, features=units, n_rows=n_rows, n_background=n_rows, seed=1, show_progress=False).pairs
        ref = {frozenset((a, b)): v for a, b, v in zip(ref.feature_1, ref.feature_2, ref.h2)}
        apart = apart.assign(reference_h2=[ref[frozenset((a, b))] for a, b in zip(apart.feature_1, apart.feature_2)])
        seeds = [learn.interaction_strength(df=rows, features=units, n_rows=n_rows, seed=s, show_progress=False).pairs for s in range(2, 7)]
        seeds = [{frozenset((a, b)): v for a, b, v in zip(p.feature_1, p.feature_2, p.h2)} for p in seeds]
        apart = apart.assign(seed_sd=[np.nanstd([d[frozenset((a, b))] for d in seeds], ddof=1) for a, b in zip(apart.feature_1, apart.feature_2)])
        err_ours, err_art = (apart.h2 - apart.reference_h2).abs(), (apart.pyartemis_h2 - apart.reference_h2).abs()
        say(f"\nWhere the two differ by more than 0.05 ({len(apart)} pairs), a reference: ours with all {n_rows} rows as background "
            f"(ten groups of {n_rows//10}, another seed). Mean |error| against it: ours {err_ours.mean():.3f}, pyartemis {err_art.mean():.3f}; "
            f"ours closer on {(err_ours < err_art).sum()} of {len(apart)}:\n")
        say("(seed_sd: the standard deviation of our H² over five other seeds, rows and background drawn anew; strength: the pair's interaction, root mean square in the prediction's units, against 1.92 for x1·x2)\n")
        say(apart[['feature_1', 'feature_2', 'h2', 'h2_std_error', 'seed_sd', 'strength', 'pyartemis_h2', 'reference_h2']].to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    say("\nThe ten largest interactions by ours (strength: root mean square, prediction units), with pyartemis's H² of the same pair:\n")
    say(table.head(10)[['feature_1', 'feature_2', 'h', 'ci_low', 'ci_high', 'h2', 'strength', 'interacting', 'pyartemis_h2']].to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    say("\nThe ten pairs where pyartemis's H² is largest among those ours does not flag:\n")
    say(table[~table.interacting].sort_values('pyartemis_h2', ascending=False).head(10)[['feature_1', 'feature_2', 'h', 'ci_low', 'ci_high', 'h2', 'h2_std_error', 'pyartemis_h2']].to_string(index=False, float_format=lambda v: f'{v:.3f}'))

    # SHAP interaction values on a model with few players
    import shap
    small = ['x0', 'x1', 'x2', 'x3', 'x4']
    sdf = df[small + ['c0', 'y']]
    slearn = train(sdf if not quick else sdf.iloc[3000:], small, epochs=6 if not quick else 2)
    srows = sdf.iloc[5000:5000 + shap_rows].drop(columns='y')
    bg = sdf.iloc[3000:5000].sample(shap_bg, random_state=0).drop(columns='y')
    sum_ = UnitModel(slearn)
    SX, SB = sum_.matrix(srows), sum_.matrix(bg)
    found = {}
    def keep(name, f): return lambda: found.__setitem__(name, f())
    masker = shap.maskers.Independent(SB, max_samples=len(SB))
    contenders = {'shap Exact': keep('shap', lambda: shap.explainers.Exact(sum_, masker)(SX, interactions=True, silent=True).values),
                  'ours': keep('ours', lambda: slearn.shap_values(srows, background=bg, interactions=True, seed=0, show_progress=False))}
    t = race(contenders, runs, CLOCK)
    sv = found['ours']
    order = [sv.names.index(u) for u in sum_.units]
    mine = sv.interaction_values[:, order][:, :, order]
    brute, brute_shap = shap_interactions_brute(slearn, sum_, srows, bg)
    rel = lambda a, b: np.abs(a - b).max()/np.abs(b).max()
    say(f"\nSHAP interaction values, {len(sum_.units)} players, {len(srows)} rows against {len(bg)} background rows; "
        f"largest difference relative to the largest |value|, all cells:\n")
    say("| tool | time | vs brute force, Lundberg et al. 2020 | vs brute force, shap Exact's index | vs shap Exact |\n|---|---|---|---|---|")
    say(f"| shap `Exact`, `interactions=True` | {t['shap Exact']:.2f} s | {rel(found['shap'], brute):.1e} | {rel(found['shap'], brute_shap):.1e} | 0 |")
    say(f"| ours, `shap_values(interactions=True)` | {t['ours']:.2f} s | {rel(mine, brute):.1e} | {rel(mine, brute_shap):.1e} | {rel(mine, found['shap']):.1e} |")
    say(f"\nTime ours / shap Exact: {t['ours']/t['shap Exact']:.3f}; additivity: max |row sum - Shapley value| "
        f"{np.abs(mine.sum(2) - sv.values[sum_.units].to_numpy()).max():.1e}, max |total - (prediction - base)| "
        f"{np.abs(mine.sum((1, 2)) - (sv.predictions - sv.base_value).to_numpy()).max():.1e}")
    if write:
        out = Path(__file__).parent/'results'/'interactions.md'
        out.write_text("# Interactions: ours against pyartemis and shap\n\n`python benchmarks/interactions.py --write`\n\n```\n"
                       + '\n'.join(lines) + "\n```\n")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=500)
    p.add_argument('--shap-rows', type=int, default=50)
    p.add_argument('--shap-background', type=int, default=100)
    p.add_argument('--runs', type=int, default=1)
    p.add_argument('--quick', action='store_true', help='a smoke run: 60 rows, a short training')
    p.add_argument('--write', action='store_true', help='write benchmarks/results/interactions.md')
    a = p.parse_args()
    if a.quick: a.rows, a.shap_rows, a.shap_background = 60, 5, 20
    main(a.rows, a.shap_rows, a.shap_background, a.runs, a.quick, a.write)
