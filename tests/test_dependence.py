"Partial dependence, value importance and `by='prediction'`: known effects, encoding, classifiers, safety, bad input"

import numpy as np, pandas as pd, pytest, torch
from scipy import stats
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import train_tabular
from test_permutation import snapshot, assert_unchanged



def rare_df(n=3000, seed=0):
    "Regression in raw units: `x` (mean 50, sd 10) adds 0.5 per unit, `colour` shifts, the rare `flag` (1%) adds 10"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x': rng.normal(50, 10, n), 'z': rng.normal(size=n),
                       'colour': rng.choice(['red', 'green', 'blue', 'purple'], n, p=[0.33, 0.33, 0.33, 0.01]),
                       'flag': (rng.random(n) < 0.01).astype(float)})
    df['y'] = 0.5*df.x + df.colour.map(dict(red=0., green=1., blue=-1., purple=3.)) + 10*df.flag + 0.2*rng.normal(size=n)
    df.loc[rng.random(n) < 0.05, 'z'] = np.nan
    return df


@pytest.fixture(scope='module')
def rare():
    "A regression learner on `rare_df` (a rare continuous 0/1 `flag`, `z` with missing values), and its data"
    df = rare_df()
    learn = train_tabular(df, ['colour'], ['x', 'z', 'flag'], 'y', metrics=rmse, epochs=20)
    return learn, df


@pytest.fixture(scope='module')
def three_classes():
    "A 3-class classifier: `petal` drives the class, `soil` nudges one class, `sepal` is noise"
    rng = np.random.default_rng(1)
    n = 1200
    df = pd.DataFrame({'petal': rng.normal(size=n), 'sepal': rng.normal(size=n), 'soil': rng.choice(['clay', 'sand'], n)})
    logits = np.stack([-2*df.petal, 1.*(df.soil=='clay'), 2*df.petal], 1)
    probs = np.exp(logits)/np.exp(logits).sum(1, keepdims=True)
    df['species'] = [rng.choice(['setosa', 'versicolor', 'virginica'], p=p) for p in probs]
    learn = train_tabular(df, ['soil'], ['petal', 'sepal'], 'species', y_block=CategoryBlock(), metrics=accuracy,
                          epochs=8, layers=(32,), procs=(Categorify, Normalize))
    return learn, df


def valid_rows(learn, df): return df.loc[learn.dls.valid_ds.items.index]


def rmse_on(learn, df):
    "RMSE of `learn` on the labelled `df`"
    with learn.no_bar(): preds, targs = learn.get_preds(dl=learn.dls.test_dl(df))
    return ((preds - targs)**2).mean().sqrt().item()


def test_partial_dependence_slope_in_raw_units(rare):
    learn, df = rare
    valid = valid_rows(learn, df)
    pdp = learn.partial_dependence('x', show_progress=False)
    res = pdp.results
    # the default grid is 20 quantiles, 5% to 95%, of the data, in the user's units (Normalize undone)
    expected = np.quantile(valid.x, np.linspace(0.05, 0.95, 20))
    assert np.allclose(res.x, expected, rtol=1e-5)
    slope = np.polyfit(res.x, res.y, 1)[0]
    # errors of the model's size over the grid's span can tilt a fitted line by about 2*rmse/span
    tolerance = 2*rmse_on(learn, valid)/(res.x.max() - res.x.min())
    assert abs(slope - 0.5) < tolerance, (slope, tolerance)
    assert tolerance < 0.1  # the check means something: a slope in normalised units (5.0) or 0.05 would fail


def test_substitution_matches_fastai_encoding(rare):
    "Setting a value in the tensors predicts what fastai's own procs give for a DataFrame with that value"
    learn, df = rare
    valid = valid_rows(learn, df).drop(columns='y')
    def mean_pred(frame):
        with learn.no_bar(): return learn.get_preds(dl=learn.dls.test_dl(frame))[0].mean().item()
    # `z` has missing values in the data: the substituted value also sets `z_na` to False
    assert valid.z.isna().any()
    pdp = learn.partial_dependence('z', df=valid, values=[-1., 0.5], show_progress=False)
    for v, got in zip(pdp.results.z, pdp.results.y): assert got == pytest.approx(mean_pred(valid.assign(z=v)), abs=1e-4)
    pdp = learn.partial_dependence('colour', df=valid, values=['purple', 'red'], show_progress=False)
    for v, got in zip(pdp.results.colour, pdp.results.y):
        assert got == pytest.approx(mean_pred(valid.assign(colour=v)), abs=1e-4)


def test_categorical_grid_includes_rare_categories(rare):
    learn, df = rare
    pdp = learn.partial_dependence('colour', show_progress=False)
    assert sorted(pdp.results.colour) == ['blue', 'green', 'purple', 'red']  # '#na#' left out: not in the data
    by = pdp.results.set_index('colour').y
    assert by['purple'] - by['red'] == pytest.approx(3, abs=1.)
    assert by['green'] - by['blue'] == pytest.approx(2, abs=0.5)


def test_rare_flag_small_permutation_large_substitution(rare):
    learn, df = rare
    pi = learn.permutation_importance(n_repeats=5, seed=0, show_progress=False)
    imp = pi.results.set_index('feature').importance
    assert imp['flag'] < 0.3*imp['x'], imp  # shuffling changes ~2% of rows: about 0.2 of x's by the numbers
    vi = learn.value_importance('flag', show_progress=False)
    res = vi.results.set_index('value')
    assert list(vi.results.value) == [1., 0.]  # default values of a continuous 0/1 feature: its two values
    assert res.loc[1., 'count'] == (valid_rows(learn, df).flag == 1).sum() > 0
    assert res.loc[1., 'count'] + res.loc[0., 'count'] == len(learn.dls.valid_ds)
    assert res.loc[1., 'effect'] > imp['x'], (res.loc[1., 'effect'], imp['x'])
    pred = learn.value_importance('flag', by='prediction', show_progress=False).results.set_index('value')
    # the model's effect of the flag is 10 give or take its errors on flagged and on ordinary rows
    valid = valid_rows(learn, df)
    tolerance = rmse_on(learn, valid[valid.flag==1]) + rmse_on(learn, valid[valid.flag==0])
    assert abs(pred.loc[1., 'effect'] - 10) < tolerance, (pred, tolerance)
    assert abs(pred.loc[0., 'effect_on_changed'] - 10) < tolerance, (pred, tolerance)  # flagged rows, made ordinary
    assert pred.loc[0., 'effect'] < 0.05*pred.loc[1., 'effect']


def test_value_importance_metric_matches_dataframe(rare):
    "`by='metric'` effect is the score with the column set to the value, minus the baseline"
    learn, df = rare
    valid = valid_rows(learn, df)
    vi = learn.value_importance('colour', df=valid, values=['purple', 'red'], show_progress=False)
    base = rmse_on(learn, valid)
    for v, effect, score in zip(vi.results.value, vi.results.effect, vi.results.score):
        assert score == pytest.approx(rmse_on(learn, valid.assign(colour=v)), abs=1e-4)
        assert effect == pytest.approx(score - base, abs=1e-4)
    assert vi.results.value[0] == 'purple' and vi.metric_name == 'rmse'


def test_by_prediction_ranks_like_metric_without_labels(regression):
    learn, df = regression
    test_df = df.iloc[-600:]
    by_metric = learn.permutation_importance(df=test_df, n_repeats=5, seed=0, show_progress=False)
    unlabelled = test_df.drop(columns='y')
    by_pred = learn.permutation_importance(df=unlabelled, by='prediction', n_repeats=5, seed=0, show_progress=False)
    m, p = by_metric.results.feature.tolist(), by_pred.results.feature.tolist()
    assert p[0] == m[0] == 'x1' and set(p[:4]) == set(m[:4]) and set(p[-2:]) == {'noise1', 'noise2'}
    rho = stats.spearmanr(by_metric.results.set_index('feature').importance[p], by_pred.results.importance).statistic
    assert rho >= 0.9, (m, p)
    assert by_pred.metric_name == 'mean |Δ prediction|' and 'prediction' in by_pred.label
    # per-row deviations, indexed like the data, average to the importances
    assert by_pred.deviations.shape == (600, 6) and list(by_pred.deviations.columns) == p
    assert by_pred.deviations.index.equals(unlabelled.index)
    assert np.allclose(by_pred.deviations.mean(), by_pred.results.importance, atol=1e-4)
    assert (by_pred.deviations >= 0).all().all()


def test_by_prediction_classifier_uses_total_variation(classification):
    learn, df = classification
    test_df = df.iloc[-600:]
    by_metric = learn.permutation_importance(df=test_df, metric='accuracy', seed=0, show_progress=False)
    by_pred = learn.permutation_importance(df=test_df.drop(columns='label'), by='prediction', seed=0, show_progress=False)
    assert by_pred.results.feature.tolist() == by_metric.results.feature.tolist()[:3] + ['junk'] == ['a', 'kind', 'b', 'junk']
    assert by_pred.metric_name == 'mean TVD of class probabilities'
    assert by_pred.deviations.max().max() <= 1 + 1e-6
    # with two classes, the TVD of the probability vectors is the change in either class's probability
    eng = Engine(learn, df=test_df, with_labels=False)
    base, moved = eng.evaluate([Identity(), Permute(eng.features['a'], eng.permutation(torch.Generator().manual_seed(0)))],
                               PredictionScorer(learn))
    assert prediction_kind(learn, base) == 'classes'
    assert torch.allclose(prediction_deviation(base, moved, 'classes'), (base[:, 1] - moved[:, 1]).abs(), atol=1e-6)


def test_binary_sigmoid_learner():
    "A 0/1 float target trained with BCE: one sigmoid output, read as the distribution [1-p, p]"
    rng = np.random.default_rng(2)
    n = 900
    df = pd.DataFrame({'u': rng.normal(size=n), 'v': rng.normal(size=n)})
    df['hit'] = (rng.random(n) < 1/(1 + np.exp(-3*df.u))).astype(np.float32)
    set_seed(0, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=['u', 'v'], y_names='hit',
                                     valid_idx=list(range(700, n)), bs=64)
    learn = tabular_learner(dls, layers=[16], loss_func=BCEWithLogitsLossFlat())
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(5, 1e-2)
    pi = learn.permutation_importance(df=df.drop(columns='hit'), by='prediction', seed=0, show_progress=False)
    assert pi.results.feature.tolist() == ['u', 'v'] and pi.metric_name == 'mean TVD of class probabilities'
    pdp = learn.partial_dependence('u', n_points=5, show_progress=False)
    assert pdp.output_kind == 'binary' and pdp.outputs == ['hit']
    assert pdp.results.hit.is_monotonic_increasing and pdp.results.hit.between(0, 1).all()


def test_classifier_probabilities_sum_to_one(three_classes):
    learn, df = three_classes
    classes = ['setosa', 'versicolor', 'virginica']
    for feature in ('petal', 'soil', ['petal', 'soil']):
        pdp = learn.partial_dependence(feature, n_points=6, show_progress=False)
        assert pdp.outputs == classes and pdp.output_kind == 'classes'
        assert np.allclose(pdp.results[classes].sum(axis=1), 1, atol=1e-5)
    pdp = learn.partial_dependence('petal', n_points=6, show_progress=False)
    assert pdp.results.virginica.is_monotonic_increasing and pdp.results.setosa.is_monotonic_decreasing
    soil = learn.partial_dependence('soil', show_progress=False).results.set_index('soil')
    assert soil.loc['clay', 'versicolor'] > soil.loc['sand', 'versicolor']


def test_ice_and_two_features(rare):
    learn, df = rare
    valid = valid_rows(learn, df)
    a = learn.partial_dependence('x', n_points=4, ice=30, seed=3, show_progress=False)
    b = learn.partial_dependence('x', n_points=4, ice=30, seed=3, show_progress=False)
    assert a.ice.row.nunique() == 30 and a.ice.row.isin(valid.index).all()
    pd.testing.assert_frame_equal(a.ice, b.ice)
    every = learn.partial_dependence('x', n_points=4, ice=len(valid), show_progress=False)
    assert np.allclose(every.ice.groupby('x', sort=False).y.mean(), every.results.y, atol=1e-4)
    grid = learn.partial_dependence(['x', 'colour'], values={'x': [40., 60.]}, show_progress=False)
    assert grid.results.shape == (8, 3) and list(grid.results.columns) == ['x', 'colour', 'y']
    rise = grid.results.pivot(index='colour', columns='x', values='y')
    assert np.allclose(rise[60.] - rise[40.], 10, atol=1.5)  # 0.5 per unit over 20 units, for every colour


def test_plots(rare, three_classes):
    learn, df = rare
    pi = learn.permutation_importance(by='prediction', n_repeats=2, seed=0, show_progress=False)
    ax = pi.plot(kind='box')
    assert [t.get_text() for t in ax.get_yticklabels()] == pi.results.feature.tolist()
    assert ax.get_xlabel() == '|Δ prediction| when shuffled'  # each row's, not a mean
    assert learn.partial_dependence('x', n_points=5, ice=10, show_progress=False).plot().get_xlabel() == 'x'
    assert len(learn.partial_dependence('colour', show_progress=False).plot().patches) == 4
    vi = learn.value_importance('colour', by='prediction', show_progress=False)
    assert len(vi.plot(kind='box').get_yticklabels()) == 4
    clf, _ = three_classes
    heat = clf.partial_dependence(['petal', 'sepal'], n_points=4, show_progress=False)
    assert len(heat.plot()) == 3 and heat.plot(output='virginica').get_title() == 'virginica'
    with pytest.raises(ValueError, match="unknown output 'daisy'.*setosa, versicolor, virginica"):
        heat.plot(output='daisy')
    plt.close('all')


def test_nothing_changes(rare):
    learn, df = rare
    snap = snapshot(learn)
    valid = valid_rows(learn, df)
    original = valid.copy()
    learn.partial_dependence('z', df=valid, n_points=3, ice=True, show_progress=False)
    learn.partial_dependence(['z', 'colour'], df=valid, n_points=3, show_progress=False)
    learn.value_importance('colour', df=valid, show_progress=False)
    learn.value_importance('colour', df=valid, by='prediction', show_progress=False)
    learn.permutation_importance(df=valid, by='prediction', n_repeats=1, show_progress=False)
    with pytest.raises(ValueError): learn.partial_dependence('colour', df=valid, values=['pink'])
    with pytest.raises(ValueError): learn.value_importance('colour', df=valid.drop(columns='y'))
    assert_unchanged(learn, snap)
    pd.testing.assert_frame_equal(valid, original)


class InterruptAt(Callback):
    "Raise `KeyboardInterrupt` at the `n`-th batch it sees, as Ctrl-C would"
    def __init__(self, n): self.n,self.seen = n,0
    def after_batch(self):
        self.seen += 1
        if self.seen == self.n: raise KeyboardInterrupt()


@pytest.mark.parametrize('call', [
    lambda learn, df: learn.partial_dependence('z', df=df, n_points=4, ice=True, bs=64, show_progress=False),
    lambda learn, df: learn.value_importance('colour', df=df, bs=64, show_progress=False),
    lambda learn, df: learn.value_importance('colour', df=df, by='prediction', bs=64, show_progress=False)])
def test_nothing_changes_when_interrupted(rare, call):
    learn, df = rare
    valid = valid_rows(learn, df)
    original = valid.copy()
    interrupt = InterruptAt(3)
    learn.add_cb(interrupt)
    try:
        snap = snapshot(learn)
        with pytest.raises(KeyboardInterrupt): call(learn, valid)
        assert interrupt.seen == 3
        assert_unchanged(learn, snap)
    finally: learn.remove_cb(interrupt)
    pd.testing.assert_frame_equal(valid, original)


def test_bad_input(rare):
    learn, df = rare
    unlabelled = df.drop(columns='y')
    with pytest.raises(ValueError, match="unknown feature 'age'; the features are: colour, x, z, flag"):
        learn.partial_dependence('age')
    with pytest.raises(ValueError, match="unknown feature 'z_na'"):
        learn.value_importance('z_na')
    with pytest.raises(ValueError, match="'pink', 'teal' not among the categories of 'colour': '#na#', 'blue'"):
        learn.partial_dependence('colour', values=['red', 'pink', 'teal'])
    with pytest.raises(ValueError, match="'pink' not among the categories"):
        learn.value_importance('colour', values=['pink'])
    with pytest.raises(ValueError, match="finite numbers, got nan"):
        learn.partial_dependence('x', values=[1., np.nan])
    with pytest.raises(ValueError, match="`n_points` must be at least 2, got 1"):
        learn.partial_dependence('x', n_points=1)
    with pytest.raises(ValueError, match="two different"):
        learn.partial_dependence(['x', 'x'])
    with pytest.raises(ValueError, match="not among"):
        learn.partial_dependence(['x', 'z'], values={'colour': ['red']})
    with pytest.raises(ValueError, match=r"unknown by 'labels'; choose one of \('metric', 'prediction'\)"):
        learn.value_importance('colour', by='labels')
    with pytest.raises(ValueError, match=r"unknown by 'labels'; choose one of \('metric', 'prediction'\)"):
        learn.permutation_importance(by='labels')
    with pytest.raises(ValueError, match=r"missing column.*'y'.*by='prediction'"):
        learn.value_importance('colour', df=unlabelled)
    with pytest.raises(ValueError, match=r"missing column.*'y'.*by='prediction'"):
        learn.permutation_importance(df=unlabelled)
    with pytest.raises(ValueError, match="'x' is continuous with .* distinct values; pass `values=`"):
        learn.value_importance('x')
    with pytest.raises(ValueError, match="needs `by='metric'`"):
        learn.permutation_importance(by='prediction', relative=True)
