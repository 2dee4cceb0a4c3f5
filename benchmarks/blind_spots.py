"""Blind spots: where each importance method misleads, measured on small fastai networks trained on data with a known truth.

Each case builds synthetic data whose answer is known, trains a real `tabular_learner` on it (fixed seeds, one torch
thread) and measures the method where it is known to mislead. A case that does not show the expected blind spot
says so in the `shown` column. Writes, from the numbers of this run:

- `benchmarks/results/blind_spots.md`: the table of cases and figures;
- `benchmarks/results/which_method.md`: which method answers which question, its blind spot, when not to use it;
- `benchmarks/results/blind_spots_prose.md`: a paragraph per method, to paste into its notebook.

    python benchmarks/blind_spots.py
"""
import time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race
from viann_validation import PROTOCOLS, normal_init

RESULTS = Path(__file__).parent/'results'


def fit(df, cats, conts, seed=0, epochs=8, lr=1e-2, layers=(64, 32), cbs=None, valid_idx=None):
    "A `tabular_learner` trained by `fit_one_cycle` on `df`'s `y`, the last fifth held out (or `valid_idx`)"
    valid_idx = list(range(len(df) - len(df)//5, len(df))) if valid_idx is None else list(valid_idx)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=cats, cont_names=conts, y_names='y',
                                     valid_idx=valid_idx, bs=128)
    set_seed(seed, reproducible=True)
    learn = tabular_learner(dls, layers=None if layers is None else list(layers), metrics=rmse, cbs=cbs)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, lr)
    return learn


def permutation(learn, **kwargs):
    "Permutation importance (loss increase, 5 repeats) of each feature, by name"
    pi = learn.permutation_importance(metric='loss', n_repeats=5, seed=0, show_progress=False, **kwargs)
    return pi.results.set_index('feature')


def valid_frame(learn):
    "The validation rows as the user gave them"
    return learn.dls.valid_ds.items


def rank(results, feature):
    "The rank (1 = most important) of `feature` in a sorted results table"
    return results.feature.tolist().index(feature) + 1


# Correlated features: `x1b` is `x1` plus a little noise; only `x1` and `x2` enter `y`.
GAP_SD = 0.1

def correlated_df(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'noise': rng.normal(size=n)})
    df['x1b'] = df.x1 + GAP_SD*rng.normal(size=n)
    df['y'] = 2*df.x1 + df.x2 + 0.3*rng.normal(size=n)
    return df


def outside_support(x1, x1b, rng):
    "Share of rows whose `x1`, once permuted, is farther from their `x1b` than 4 sd of the gap real rows show"
    return float((np.abs(rng.permutation(x1) - x1b) > 4*GAP_SD).mean())


def pd_slope(learn, feature):
    "Slope of a line through the partial dependence of `learn` on `feature`"
    res = learn.partial_dependence(feature, show_progress=False).results
    return float(np.polyfit(res[feature].astype(float), res.iloc[:, 1], 1)[0])


def correlated_case():
    "Permutation, conditional permutation and partial dependence when `x1` has a near copy `x1b`"
    df = correlated_df()
    both, alone = fit(df, [], ['x1', 'x1b', 'x2', 'noise']), fit(df, [], ['x1', 'x2', 'noise'])
    plain = permutation(both)
    pair = permutation(both, groups={'x1+x1b': ['x1', 'x1b']})
    cond = permutation(both, conditional=True)
    plain_s, cond_s = race({'plain': lambda: permutation(both), 'conditional': lambda: permutation(both, conditional=True)}, 5).values()
    valid = valid_frame(both)
    grid = np.quantile(valid.x1, np.linspace(0.05, 0.95, 20))
    pd_outside = float((np.abs(grid[:, None] - valid.x1b.to_numpy()[None]) > 4*GAP_SD).mean())
    return dict(x1=plain.importance['x1'], x1b=plain.importance['x1b'], pair=pair.importance['x1+x1b'],
                x1_alone=permutation(alone).importance['x1'], x2=plain.importance['x2'],
                real_outside=float((np.abs(valid.x1 - valid.x1b) > 4*GAP_SD).mean()),
                perm_outside=outside_support(valid.x1.to_numpy(), valid.x1b.to_numpy(), np.random.default_rng(0)),
                cond_x1=cond.importance['x1'], cond_x1b=cond.importance['x1b'], cond_x2=cond.importance['x2'],
                cond_cost=cond_s/plain_s, pd_slope_x1=pd_slope(both, 'x1'), pd_slope_x1b=pd_slope(both, 'x1b'),
                pd_slope_alone=pd_slope(alone, 'x1'), pd_outside=pd_outside)


def interaction_case():
    "Partial dependence of `y = x1*x2 + x3`: `x1` matters as much as `x3` but its average effect is flat"
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'x3': rng.normal(size=n)})
    df['y'] = df.x1*df.x2 + df.x3 + 0.1*rng.normal(size=n)
    learn = fit(df, [], ['x1', 'x2', 'x3'])
    pi = permutation(learn)
    def pd_range(f):
        res = learn.partial_dependence(f, show_progress=False).results
        return float(np.ptp(res.iloc[:, 1]))
    return dict(pi_x1=pi.importance['x1'], pi_x3=pi.importance['x3'], pd_x1=pd_range('x1'), pd_x3=pd_range('x3'))


def shift_case():
    "Importance without labels on a feature that tracks `y` in training and is noise in the rows scored"
    rng = np.random.default_rng(2)
    n = 3000
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n)})
    df['y'] = 2*df.x1 + df.x2 + rng.normal(size=n)
    df['shifted'] = df.y/df.y.std() + 0.2*rng.normal(size=n)
    scored = np.arange(n - n//5, n)
    df.loc[scored, 'shifted'] = rng.permutation(df.shifted.to_numpy()[scored])
    learn = fit(df, [], ['x1', 'x2', 'shifted'])
    moved = learn.permutation_importance(by='prediction', n_repeats=5, seed=0, show_progress=False).results
    pi = permutation(learn)
    mean = float(df.shifted.iloc[:n - n//5].mean())
    neutral = learn.value_importance('shifted', values=[mean], metric='loss', show_progress=False)
    return dict(moved_shifted=moved.set_index('feature').importance['shifted'],
                moved_x1=moved.set_index('feature').importance['x1'], moved_rank=rank(moved, 'shifted'),
                pi_shifted=pi.importance['shifted'], pi_x1=pi.importance['x1'],
                baseline=neutral.baseline, neutral_effect=float(neutral.results.effect[0]))


def rare_df(n, n_rare, seed):
    "`y = 2*x1 + 5` on `n_rare` rows of category `r`, nothing for the common categories"
    rng = np.random.default_rng(seed)
    cat = rng.choice(list('abc'), n).astype(object)
    cat[rng.choice(n, n_rare, replace=False)] = 'r'
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'cat': cat})
    df['y'] = 2*df.x1 + df.x2 + 5*(df.cat == 'r') + 0.3*rng.normal(size=n)
    return df


def rare_case(n=600, n_rare=8, seeds=(0, 1, 2)):
    "Value substitution of a rare category with a large effect, on `seeds` draws of the data"
    runs = []
    for s in seeds:
        df = rare_df(n, n_rare, s)
        learn = fit(df, ['cat'], ['x1', 'x2'], seed=s, epochs=12)
        vi = learn.value_importance('cat', metric='loss', show_progress=False).results.set_index('value')
        learned = learn.value_importance('cat', by='prediction', show_progress=False).results.set_index('value')
        pi = permutation(learn)
        runs.append(dict(effect_r=vi.effect['r'], effect_a=vi.effect['a'], valid_r=vi['count']['r'],
                         train_r=int((df.cat.iloc[:n - n//5] == 'r').sum()), pi_cat=pi.importance['cat'],
                         pi_x2=pi.importance['x2'], learned_r=learned.effect_on_changed['r']))
    runs = pd.DataFrame(runs)
    return dict(**{k: runs[k].mean() for k in runs}, learned_r_sd=runs.learned_r.std(ddof=1),
                learned_r_min=runs.learned_r.min(), learned_r_max=runs.learned_r.max(), n=n, n_rare=n_rare,
                n_seeds=len(seeds))


def drop_column_case(seeds=(0, 1, 2)):
    "Drop-column importance of a weak feature against the spread of retraining, and its cost"
    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'weak': rng.normal(size=n),
                       'noise': rng.normal(size=n)})
    df['y'] = 2*df.x1 + df.x2 + 0.15*df.weak + 0.3*rng.normal(size=n)
    learn = fit(df, [], ['x1', 'x2', 'weak', 'noise'], epochs=5)
    start = time.perf_counter()
    dc = learn.drop_column_importance(lambda l: l.fit_one_cycle(5, 1e-2), seeds=seeds, metric='loss', show_progress=False)
    dc_s = time.perf_counter() - start
    start = time.perf_counter()
    pi = permutation(learn)
    pi_s = time.perf_counter() - start
    r = dc.results.set_index('feature')
    return dict(trainings=(len(r) + 1)*len(seeds), dc_s=dc_s, pi_s=pi_s, dc_weak=r.importance['weak'],
                dc_weak_sd=r['std']['weak'], dc_noise=r.importance['noise'], dc_noise_sd=r['std']['noise'],
                baseline_sd=float(np.std(dc.baseline_scores, ddof=1)), pi_weak=pi.importance['weak'],
                pi_weak_sd=pi['std']['weak'], n_seeds=len(seeds))


# VIANN: the ground truth of issue 13, with five inputs of pure noise.
VIANN_CONTS = [f'x{i}' for i in range(8)]

def viann_df(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'x{i}': rng.normal(size=n) for i in range(8)})
    df['grp'] = rng.choice(list('abcd'), n)
    df['y'] = (2*df.x0 + 2*np.sin(2*df.x1) + df.x2**2 + df.grp.map(dict(a=-1., b=0., c=.5, d=1.))
               + 0.3*rng.normal(size=n))
    return df


class WeightPath(Callback):
    "The first-layer weights of each input (as VIANN sees them) after every training epoch"
    order = 91
    def before_train(self):
        if self.epoch == 0: self.inputs = InputMap(self.learn); self.path = [self.inputs.weights().clone()]
    def after_train(self): self.path.append(self.inputs.weights().clone())

    def movement(self, features):
        "How far the weights of `features` end from where they started, and the share of their path run in the first quarter of training"
        cols = sum([sum(self.inputs.spans[f], []) for f in features], [])
        path = torch.stack([w[:, cols] for w in self.path]).flatten(1)
        steps = (path[1:] - path[:-1]).norm(dim=1)
        return (path[-1] - path[0]).norm().item()/len(features)**0.5, (steps[:len(steps)//4].sum()/steps.sum()).item()


NOISE = ['x3', 'x4', 'x5', 'x6', 'x7']

def viann_figures(learn, path, seed):
    "Ranks of `x0` by VIANN and by permutation, VIANN scores, and how far the weights of `x0`, `x1` and the noise moved"
    vi = learn.variance_importance.results
    pi = learn.permutation_importance(metric='loss', n_repeats=5, seed=seed, show_progress=False).results
    scores = vi.set_index('feature').importance
    (moved_x0, early_x0), (moved_x1, early_x1), (moved_noise, _) = [path.movement(f) for f in (['x0'], ['x1'], NOISE)]
    return dict(seed=seed, viann_rank=rank(vi, 'x0'), perm_rank=rank(pi, 'x0'), n_features=len(vi),
                noise_above=int((scores[NOISE] > scores['x0']).sum()), viann_x0=scores['x0'], viann_x1=scores['x1'],
                moved_x0=moved_x0, moved_x1=moved_x1, moved_noise=moved_noise, early_x0=early_x0, early_x1=early_x1)


def viann_default(seed):
    "VIANN and permutation ranks of `x0` on fastai's default `tabular_learner`, 8 epochs of one-cycle at its default lr"
    df = viann_df(seed=seed)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['grp'], cont_names=VIANN_CONTS,
                                     y_names='y', valid_idx=list(range(1600, 2000)), bs=64)
    set_seed(seed, reproducible=True)
    path = WeightPath()
    learn = tabular_learner(dls, metrics=rmse, cbs=[VarianceImportance(), path])
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(8)
    return viann_figures(learn, path, seed)


def viann_sgd(seed):
    "VIANN scores on a plain MLP trained by the paper's protocol (`benchmarks/viann_validation.py`) for 100 epochs"
    p = PROTOCOLS['paper']
    df = viann_df(seed=seed)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['grp'], cont_names=VIANN_CONTS,
                                     y_names='y', valid_idx=list(range(1600, 2000)), bs=round(1600/7))
    set_seed(seed, reproducible=True)
    path = WeightPath()
    learn = tabular_learner(dls, layers=p['layers'], config=tabular_config(use_bn=False), wd=p['wd'],
                            opt_func=p['opt_func'], metrics=rmse, cbs=[VarianceImportance(), path])
    normal_init(learn.model, p['init_sd'])
    with learn.no_bar(), learn.no_logging(): learn.fit(p['regression_epochs'], p['lr'])
    return viann_figures(learn, path, seed)


def viann_case(seeds=(0, 1, 2)):
    "The VIANN ground-truth case on both learners, one row per seed"
    return pd.DataFrame([viann_default(s) for s in seeds]), pd.DataFrame([viann_sgd(s) for s in seeds])


def yes(shown): return shown if isinstance(shown, str) else 'yes' if shown else 'no'

def ranks(s): return ', '.join(map(str, s))


def blind_spots_table(c, s, rare, few, p, d, vd, vs):
    "The markdown table of every case, from the figures of the cases"
    rows = [
        ('permutation', 'near copies split the credit', 'y = 2·x1 + x2; x1b = x1 + N(0, 0.1²), not in y',
         f"loss increase: x1 {c['x1']:.2f}, x1b {c['x1b']:.2f}, both shuffled together {c['pair']:.2f}; x1 in a network "
         f"trained without x1b {c['x1_alone']:.2f}", c['x1'] + c['x1b'] < 0.75*c['pair']),
        ('permutation', 'shuffled rows fall outside the data', 'the same',
         f"{c['perm_outside']:.0%} of rows with x1 shuffled have \\|x1 − x1b\\| > 0.4 (4 sd of the real gap); "
         f"{c['real_outside']:.0%} of real rows do", c['perm_outside'] > 0.5),
        ('conditional permutation', 'scores only what a feature adds beyond its associates', 'the same',
         f"x1 {c['cond_x1']:.2f}, x1b {c['cond_x1b']:.2f} (plain: {c['x1']:.2f}, {c['x1b']:.2f}); x2, with no associate, "
         f"{c['cond_x2']:.2f} (plain {c['x2']:.2f}); {c['cond_cost']:.1f}× the time of plain", c['cond_x1'] < 0.25*c['x1']),
        ('prediction deviation', 'no labels, no sign: a feature that hurts scores high',
         'y = 2·x1 + x2 + N(0, 1); `shifted` = y/sd + N(0, 0.2²) in training, unrelated to y in the scored rows',
         f"`by='prediction'` ranks shifted {s['moved_rank']} of 3 ({s['moved_shifted']:.2f}; x1 {s['moved_x1']:.2f}); "
         f"setting shifted to its training mean changes the loss by {s['neutral_effect']:+.2f} (from {s['baseline']:.2f}); "
         f"permutation by loss: shifted {s['pi_shifted']:.2f}, x1 {s['pi_x1']:.2f}", s['moved_rank'] == 1 and s['neutral_effect'] < 0),
        ('value substitution', 'a rare value: large effect, small permutation importance',
         f"y = 2·x1 + x2 + 5·[cat = r], r on {rare['n_rare']} of {rare['n']} rows; {rare['n_seeds']} seeds",
         f"every row set to r: loss +{rare['effect_r']:.1f} (a common level: +{rare['effect_a']:.2f}); permutation of cat "
         f"{rare['pi_cat']:.2f} (x2 {rare['pi_x2']:.2f}); r's learned effect {rare['learned_r']:.2f} ± {rare['learned_r_sd']:.2f}",
         rare['effect_r'] > 10*rare['pi_cat']),
        ('value substitution', 'the count matters', f"the same, r on {few['n_rare']} of {few['n']} rows "
         f"({few['train_r']:.0f} in training)", f"r's learned effect {few['learned_r']:.2f} ± {few['learned_r_sd']:.2f} "
         f"(from {few['learned_r_min']:.2f} to {few['learned_r_max']:.2f}; truth 5); every row set to r: loss "
         f"+{few['effect_r']:.2f}; r in {few['valid_r']:.1f} scored rows", few['learned_r'] < 2.5),
        ('partial dependence', 'the average hides an interaction', 'y = x1·x2 + x3',
         f"range of the curve: x1 {p['pd_x1']:.2f}, x3 {p['pd_x3']:.2f}; permutation: x1 {p['pi_x1']:.2f}, x3 {p['pi_x3']:.2f}",
         p['pd_x1'] < 0.2*p['pd_x3'] and p['pi_x1'] > 0.5*p['pi_x3']),
        ('partial dependence', 'near copies: impossible rows, a split slope', 'y = 2·x1 + x2; x1b = x1 + N(0, 0.1²)',
         f"slope of the curve: x1 {c['pd_slope_x1']:.2f}, x1b {c['pd_slope_x1b']:.2f} (a network without x1b: "
         f"{c['pd_slope_alone']:.2f}; truth 2); {c['pd_outside']:.0%} of the grid × rows have \\|x1 − x1b\\| > 0.4",
         c['pd_slope_x1'] < 1.5 and c['pd_outside'] > 0.5),
        ('drop-column', 'cost', 'y = 2·x1 + x2 + 0.15·weak + N(0, 0.3²), and a noise column',
         f"{d['trainings']} trainings ({d['n_seeds']} seeds) in {d['dc_s']:.1f} s: {d['dc_s']/d['pi_s']:.0f}× permutation "
         f"importance ({d['pi_s']:.2f} s)", True),
        ('drop-column', 'retraining noise as large as a weak effect', 'the same',
         f"weak {d['dc_weak']:.3f} ± {d['dc_weak_sd']:.3f}, noise {d['dc_noise']:+.3f} ± {d['dc_noise_sd']:.3f} (sd over "
         f"seeds, each drop paired with the baseline of its seed); the baseline itself varies by {d['baseline_sd']:.3f}",
         'no' if d['dc_weak'] > 2*d['baseline_sd'] else 'partly: pairing by seed cancels it'
         if d['dc_weak'] - 2*d['dc_weak_sd'] > d['dc_noise'] + 2*d['dc_noise_sd'] else 'yes'),
        ('VIANN', 'ranks by how long weights move, not by effect', "y = 2·x0 + 2·sin(2·x1) + x2² + grp + N(0, 0.3²), "
         "5 noise inputs; default `tabular_learner`, `fit_one_cycle(8)`",
         f"rank of x0 of {vd.n_features[0]}: VIANN {ranks(vd.viann_rank)}, permutation {ranks(vd.perm_rank)}; "
         f"all 5 noise inputs above x0 on {(vd.noise_above == 5).sum()} of {len(vd)} seeds", (vd.viann_rank > vd.perm_rank).all()),
        ('VIANN', 'the same on the paper\'s setting', 'the same data; MLP 50-100-50 by SGD, 100 epochs (the paper\'s protocol)',
         f"rank of x0: VIANN {ranks(vs.viann_rank)}, permutation {ranks(vs.perm_rank)}; VIANN score of x0 "
         f"{vs.viann_x0.mean():.2f} (seeds {ranks(vs.viann_x0.round(2))}) against 1.00 for x1", (vs.viann_rank > vs.perm_rank).all())]
    head = '| method | blind spot | case (ground truth) | measured | shown |\n|---|---|---|---|---|\n'
    return head + '\n'.join(f'| {m} | {b} | {t} | {f} | {yes(sh)} |' for m,b,t,f,sh in rows)


def viann_table(vd, vs):
    "One row per learner and seed: ranks of x0, VIANN scores, how far the weights moved"
    runs = pd.concat([vd.assign(learner='default, one-cycle 8 epochs'), vs.assign(learner='MLP by SGD, 100 epochs')])
    head = ('| learner | seed | x0 by VIANN | x0 by permutation | VIANN x0 | VIANN x1 | noise inputs above x0 | weights moved: x0 '
            '| x1 | noise (mean) | path in the first quarter: x0 | x1 |\n' + '|---'*12 + '|\n')
    return head + '\n'.join(
        f"| {r.learner} | {r.seed} | {r.viann_rank} of {r.n_features} | {r.perm_rank} | {r.viann_x0:.3f} | {r.viann_x1:.2f} "
        f"| {r.noise_above} | {r.moved_x0:.2f} | {r.moved_x1:.2f} | {r.moved_noise:.2f} | {r.early_x0:.0%} | {r.early_x1:.0%} |"
        for r in runs.itertuples())


def which_method(c, s, rare, few, p, d, vd, vs):
    "Which method answers which question, its blind spot with this run's number, and when not to use it"
    rows = [
        ('`learn.permutation_importance()`', 'how much worse this model gets when a feature\'s values are shuffled',
         f"near copies split the credit: x1 {c['x1']:.2f} and its copy {c['x1b']:.2f}, together {c['pair']:.2f}; "
         f"{c['perm_outside']:.0%} of shuffled rows are impossible", 'features are strongly associated (group them: `groups=\'auto\'`)'),
        ('`conditional=True`', 'what a feature tells the model beyond the features associated with it',
         f"a feature the model uses scores near 0 if an associate explains it: x1 {c['cond_x1']:.2f} against {c['x1']:.2f} "
         f"plain; {c['cond_cost']:.1f}× the time", 'you ask what the model relies on, not what is unique to a feature'),
        ('`by=\'prediction\'`', 'how far predictions move when a feature is shuffled; no labels needed',
         f"no sign: a feature that hurts ranks first ({s['moved_shifted']:.2f} against {s['moved_x1']:.2f} for the true "
         f"cause) while removing it cuts the loss by {-s['neutral_effect']:.2f}", 'you have labels and ask what helps'),
        ('`learn.value_importance()`', 'the effect of each value, set on every row',
         f"a rare value's effect is extrapolated to every row: +{rare['effect_r']:.1f} for a level on {rare['n_rare']} of "
         f"{rare['n']} rows whose feature permutes at {rare['pi_cat']:.2f}; learned from {few['train_r']:.0f} rows it is "
         f"{few['learned_r']:.2f} of a true 5", 'a value has few training rows (read `count`)'),
        ('`learn.partial_dependence()`', 'the mean prediction as a feature is set to each value',
         f"the average hides interactions: x1 in x1·x2 spans {p['pd_x1']:.2f} (x3: {p['pd_x3']:.2f}) yet permutes at "
         f"{p['pi_x1']:.2f}; a near copy halves the slope ({c['pd_slope_x1']:.2f} for 2)", 'features interact (add `ice=True`) or are correlated'),
        ('`learn.drop_column_importance()`', 'how much worse a network retrained without the feature gets',
         f"{d['trainings']} trainings, {d['dc_s']/d['pi_s']:.0f}× permutation; a weak feature ({d['dc_weak']:.3f}) is the "
         f"size of the baseline's seed-to-seed spread ({d['baseline_sd']:.3f})", 'training is slow, or effects are small against the spread of seeds'),
        ('`VarianceImportance()`', 'which inputs\' first-layer weights moved during training',
         f"ranks by movement, not effect: the most important input ranked {ranks(vd.viann_rank)} of {vd.n_features[0]} "
         f"(default learner, 3 seeds), {vs.viann_x0.mean():.2f} against 1.00 on the paper's SGD MLP", 'you need a ranking you can act on; use it as a free first look')]
    head = '| method | answers | blind spot (measured) | do not use when |\n|---|---|---|---|\n'
    return head + '\n'.join(f'| {m} | {a} | {b} | {w} |' for m,a,b,w in rows)


def prose(c, s, rare, few, p, d, vd, vs):
    "A paragraph of blind spots per method, with this run's numbers"
    return f"""## Permutation importance

Shuffling one of two near copies leaves the other to carry the signal. With `y = 2·x1 + x2` and `x1b` a copy of `x1`
plus a little noise, the network spreads its use over both: shuffling `x1` raises the loss by {c['x1']:.2f} and `x1b`
by {c['x1b']:.2f}, while shuffling them together raises it by {c['pair']:.2f}, as much as `x1` alone in a network
trained without the copy ({c['x1_alone']:.2f}). Shuffling also makes rows the data never has: {c['perm_outside']:.0%}
of the shuffled rows put `x1` more than 4 sd of the real gap away from `x1b`, where none of the real rows are, and
the score measures the network there. Group associated features (`groups='auto'`).

## Conditional permutation

Shuffling within strata of the associated features asks what a feature adds beyond them. On the near copies, `x1`
drops from {c['x1']:.2f} to {c['cond_x1']:.2f} and `x1b` from {c['x1b']:.2f} to {c['cond_x1b']:.2f}, although the
network uses them (together {c['pair']:.2f}), while `x2`, with no associate, keeps its score ({c['cond_x2']:.2f}
against {c['x2']:.2f}). A low conditional score means "redundant", not "unused". It took {c['cond_cost']:.1f}× the time
of plain permutation here.

## Importance without labels (`by='prediction'`)

How far predictions move says what the model uses, not whether it helps. A feature that tracked `y` in training
and is noise in the scored rows ranks first ({s['moved_shifted']:.2f}, against {s['moved_x1']:.2f} for the real cause
`x1`), although setting it to its training mean changes the loss by {s['neutral_effect']:+.2f} (from
{s['baseline']:.2f}): it hurts. A deviation has no sign; with labels, score by the metric.

## Value substitution

Setting every row to a value asks what the model does with that value everywhere, which a rare value never has.
A level on {rare['n_rare']} of {rare['n']} rows with a true effect of +5 raises the loss by {rare['effect_r']:.1f}
when every row is set to it, while shuffling the whole feature costs {rare['pi_cat']:.2f}, because it moves only the
few rows that had or get the level. Read the `count`: from {few['train_r']:.0f} training rows ({few['n_rare']} of
{few['n']}) the network learned {few['learned_r']:.2f} ± {few['learned_r_sd']:.2f} of that +5 over {few['n_seeds']}
seeds, so the value's effect is the network's guess, not the data's.

## Partial dependence

The curve is an average over rows, so an interaction cancels out: for `y = x1·x2 + x3` the curve of `x1` spans
{p['pd_x1']:.2f} against {p['pd_x3']:.2f} for `x3`, although shuffling `x1` costs {p['pi_x1']:.2f} (`x3`:
{p['pi_x3']:.2f}); `ice=True` shows the individual curves that cancel. With a near copy, each point sets `x1` and keeps
`x1b`: {c['pd_outside']:.0%} of the rows evaluated are impossible, and the slope of `x1` is {c['pd_slope_x1']:.2f}
where `y` rises by 2 (a network without the copy: {c['pd_slope_alone']:.2f}).

## Drop-column importance

Retraining is the cost: {d['trainings']} trainings for 4 features and {d['n_seeds']} seeds took {d['dc_s']:.1f} s,
{d['dc_s']/d['pi_s']:.0f}× permutation importance on the same network. And each training is a draw: the baseline's
loss varies by {d['baseline_sd']:.3f} (sd over seeds), as much as the effect of a weak feature ({d['dc_weak']:.3f}).
Pairing each drop with the baseline of the same seed, as the method does, cancels most of it here (weak
{d['dc_weak']:.3f} ± {d['dc_weak_sd']:.3f}, pure noise {d['dc_noise']:+.3f} ± {d['dc_noise_sd']:.3f}); use several seeds.

## VIANN

VIANN scores how much and how long the weights leaving an input move, which is not how much the input matters. For
`y = 2·x0 + 2·sin(2·x1) + x2² + grp` with five noise inputs, fastai's default `tabular_learner` (8 epochs of
one-cycle) ranked `x0`, which permutation ranks {ranks(vd.perm_rank)} on three seeds, {ranks(vd.viann_rank)} of
{vd.n_features[0]} (below all five noise inputs on {(vd.noise_above == 5).sum()} of {len(vd)} seeds): its weights moved
{vd.moved_x0.mean():.2f} from where they started, the noise inputs' {vd.moved_noise.mean():.2f}, those of `x1`
{vd.moved_x1.mean():.2f}. On a plain MLP trained by SGD as in the paper, `x0` scores {vs.viann_x0.mean():.2f} against
1.00 for `x1` (rank {ranks(vs.viann_rank)}). The linear effect is learned early and then left alone: the weights of
`x0` travel less than those of `x1` ({vs.moved_x0.mean():.2f} against {vs.moved_x1.mean():.2f}) and run
{vs.early_x0.mean():.0%} of their path in the first quarter of training ({vs.early_x1.mean():.0%} for `x1`), while
the variance VIANN takes rewards weights that keep moving. Use it as a free first look, and permutation importance
for a ranking.
"""


def main():
    warnings.filterwarnings('ignore')
    torch.set_num_threads(1)
    start = time.perf_counter()
    figures = [correlated_case(), shift_case(), rare_case(3000, 30), rare_case(600, 8), interaction_case(),
               drop_column_case(), *viann_case()]
    seconds = time.perf_counter() - start
    table = blind_spots_table(*figures)
    viann = viann_table(*figures[-2:])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS/'blind_spots.md').write_text(
        f"# Blind spots of each method, measured\n\nWritten by `python benchmarks/blind_spots.py` in {seconds:.0f} s "
        f"(one torch thread). Importances are loss increases (mean of 5 shuffles) unless said otherwise.\n\n{table}\n\n"
        f"## VIANN against permutation importance, per seed\n\n{viann}\n\n'weights moved': the distance between the "
        f"first-layer weights of an input (seen from its standardised value, as VIANN sees them) at the start and at the "
        f"end of training; 'path in the first quarter': the share of the distance they travelled, epoch by epoch, run in "
        f"the first quarter of the epochs.\n")
    (RESULTS/'which_method.md').write_text(which_method(*figures) + '\n')
    (RESULTS/'blind_spots_prose.md').write_text(prose(*figures))
    print(table, viann, f'{seconds:.0f} s', sep='\n\n')


if __name__ == '__main__': main()
