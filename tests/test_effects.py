"Accumulated local effects: known additive models, PyALE, categorical order, interactions, classifiers, weights, safety, bad input"

import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import train_tabular
from test_permutation import snapshot, assert_unchanged


def additive_df(n=600, seed=0):
    "`x` (mean 50, sd 10, 5% missing), `z`, `w` correlated with `z`, and the category `grp` whose levels differ in `z`"
    rng = np.random.default_rng(seed)
    grp = rng.choice(['a', 'b', 'c', 'd'], n)
    z = rng.normal(pd.Series(grp).map(dict(a=0., b=3., c=1., d=2.)).to_numpy(), 0.5)
    df = pd.DataFrame({'x': rng.normal(50, 10, n), 'z': z, 'w': z + rng.normal(0, .2, n), 'grp': grp})
    df['y'] = 2*df.x + rng.normal(size=n)
    df.loc[rng.random(n) < 0.05, 'x'] = np.nan
    return df


@pytest.fixture(scope='module')
def linear():
    "A `TabularModel` with no hidden layer and fixed weights: 2 per unit of raw `x`, -1 per unit of raw `z`, an embedding for `grp`"
    df = additive_df()
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=['grp'], cont_names=['x', 'z', 'w'],
                                     y_names='y', valid_idx=list(range(500, 600)), bs=64)
    learn = tabular_learner(dls, layers=[], config=dict(bn_cont=False), emb_szs={'grp': 2, 'x_na': 1})
    stds = normalization(dls.train_ds)[1]
    lin = learn.model.layers[0][0]
    with torch.no_grad():
        lin.weight.zero_(); lin.bias.zero_()
        n_emb = learn.model.n_emb
        lin.weight[0, n_emb + 0] = 2*float(stds['x'])
        lin.weight[0, n_emb + 1] = -float(stds['z'])
        lin.weight[0, :2] = torch.tensor([1., 0.5])  # the `grp` embedding, read through its two dimensions
        learn.model.embeds[0].weight.copy_(torch.tensor([[0., 0], [1, 2], [-1, 0], [3, 1], [0, -2]]))
    return learn, df


def level_truth(learn, level):
    "The linear model's contribution of `grp` at `level`"
    e = learn.model.embeds[0].weight.detach()[learn.dls.train_ds.classes['grp'].o2i[level]]
    return float(e[0] + 0.5*e[1])


def test_additive_continuous_equals_centred_effect(linear):
    learn, df = linear
    ale = learn.accumulated_local_effects('x', df=df, show_progress=False)
    res = ale.results
    x = df.x.dropna().to_numpy()
    edges = np.quantile(x, np.linspace(0, 1, 21), method='inverted_cdf')
    np.testing.assert_allclose(res.x, edges, rtol=1e-6)
    # the true effect 2·x, centred so that the rows' mean (each bin at the mean of its edges) is zero
    bins = np.clip(np.searchsorted(edges, x), 1, 20) - 1
    centre = np.mean(2*(edges[bins] + edges[bins+1])/2)
    np.testing.assert_allclose(res.y, 2*edges - centre, atol=1e-3)
    np.testing.assert_allclose(res.y_se, 0, atol=1e-3)
    assert ale.missing == df.x.isna().sum() and res['count'].sum() == df.x.notna().sum()


def test_additive_categorical_equals_centred_effect(linear):
    learn, df = linear
    res = learn.accumulated_local_effects('grp', df=df, show_progress=False).results
    truth = np.array([level_truth(learn, l) for l in res.grp])
    counts = df.grp.value_counts()[res.grp].to_numpy()
    np.testing.assert_allclose(res.y, truth - np.average(truth, weights=counts), atol=1e-4)
    np.testing.assert_array_equal(res['count'], counts)


def test_categorical_order_is_by_the_other_features_and_deterministic(linear):
    learn, df = linear
    # `grp`'s levels differ in `z` (and its copy `w`): a 0, c 1, d 2, b 3; the first level in vocabulary order sits low
    first = learn.accumulated_local_effects('grp', df=df, show_progress=False).results
    assert first.grp.tolist() == ['a', 'c', 'd', 'b']
    again = learn.accumulated_local_effects('grp', df=df.sample(frac=1, random_state=1), show_progress=False).results
    pd.testing.assert_frame_equal(first, again)


def test_second_order_of_an_additive_model_is_zero(linear):
    learn, df = linear
    ale = learn.accumulated_local_effects(['x', 'z'], df=df, bins=8, show_progress=False)
    assert np.nanmax(np.abs(ale.results.y)) < 1e-4 and np.abs(ale.grid).max() < 1e-4
    # `z` and `w` are correlated: some cells hold no rows; they are masked, not an error
    pair = learn.accumulated_local_effects(['z', 'w'], df=df, bins=10, show_progress=False)
    empty = pair.results['count'] == 0
    assert empty.any() and pair.results.y[empty].isna().all() and pair.results.y[~empty].notna().all()
    pair.plot()


def test_interaction_is_found():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'a': rng.uniform(-1, 1, 800), 'b': rng.uniform(-1, 1, 800)})
    df['y'] = 2*df.a*df.b + df.a
    learn = train_tabular(df, [], ['a', 'b'], 'y', epochs=3, procs=(Normalize,))
    ale = learn.accumulated_local_effects(['a', 'b'], df=df, bins=5, show_progress=False)
    cells = ale.results
    truth = 2*(cells['a low'] + cells['a high'])/2*(cells['b low'] + cells['b high'])/2
    assert np.corrcoef(cells.y, truth)[0, 1] > 0.9


@pytest.fixture(scope='module')
def net():
    "A [32, 16] network on four continuous columns (procs `Normalize` only), and its rows as it sees them"
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f'x{i}': rng.normal(size=800) for i in range(3)})
    df['x1'] = 0.8*df.x0 + 0.6*df.x1
    df['y'] = np.sin(2*df.x0) + df.x0*df.x2 + rng.normal(0, .1, 800)
    learn = train_tabular(df, [], ['x0', 'x1', 'x2'], 'y', epochs=3, layers=(32, 16), procs=(Normalize,))
    means, stds = normalization(learn.dls.train_ds)
    seen = df.copy()
    for c in ['x0', 'x1', 'x2']:  # the raw values the float32 encoding decodes to, so every contender bins the same numbers
        seen[c] = ((df[c] - means[c])/stds[c]).to_numpy().astype(np.float32).astype(np.float64)*stds[c] + means[c]
    return learn, seen


class Wrapped:
    "The learner's network on raw values of its continuous columns, as PyALE calls a model"
    def __init__(self, learn):
        self.learn, (self.means, self.stds) = learn, normalization(learn.dls.train_ds)
        self.names = list(learn.dls.train_ds.cont_names)
    def predict(self, X):
        conts = torch.tensor(np.stack([(X[c].to_numpy() - self.means[c])/self.stds[c] for c in self.names], 1), dtype=torch.float32)
        with torch.no_grad(): return self.learn.model.eval()(torch.zeros(len(X), 0, dtype=torch.long), conts).numpy().ravel()


def test_equals_pyale(net):
    PyALE = pytest.importorskip('PyALE')
    learn, seen = net
    X = seen[['x0', 'x1', 'x2']]
    theirs = PyALE.ale(X=X, model=Wrapped(learn), feature=['x0'], grid_size=20, include_CI=False, plot=False)
    ours = learn.accumulated_local_effects('x0', df=seen, show_progress=False).results
    np.testing.assert_array_equal(theirs.index.to_numpy(), ours.x0.to_numpy())
    np.testing.assert_array_equal(theirs['size'].to_numpy(), ours['count'].to_numpy())
    span = ours.y.max() - ours.y.min()
    assert np.abs(theirs.eff.to_numpy() - ours.y.to_numpy()).max() < 1e-4*span


def test_partial_dependence_beside_it(net):
    learn, seen = net
    ale = learn.accumulated_local_effects('x0', df=seen, show_progress=False)
    pdep = learn.partial_dependence('x0', df=seen, values=list(ale.results.x0), show_progress=False).results.y.to_numpy()
    w = ale.bin_weights
    centred = pdep - ((pdep[:-1] + pdep[1:])/2*w).sum()/w.sum()
    np.testing.assert_allclose(ale.partial_dependence().y, centred, atol=1e-4)
    assert len(ale.plot(compare='pd').get_lines()) >= 2


def test_weights(net):
    learn, seen = net
    w = np.random.default_rng(0).integers(1, 3, len(seen))
    weighted = learn.accumulated_local_effects('x0', df=seen, sample_weight=w, show_progress=False).results
    repeated = learn.accumulated_local_effects('x0', df=seen.loc[seen.index.repeat(w)], show_progress=False).results
    np.testing.assert_allclose(weighted.x0, repeated.x0)
    np.testing.assert_allclose(weighted.y, repeated.y, atol=1e-5)
    as_column = learn.accumulated_local_effects('x0', df=seen.assign(weight=w), sample_weight='weight', show_progress=False).results
    pd.testing.assert_frame_equal(weighted, as_column)
    ones = learn.accumulated_local_effects('x0', df=seen, sample_weight=np.ones(len(seen)), show_progress=False).results
    pd.testing.assert_frame_equal(ones, learn.accumulated_local_effects('x0', df=seen, show_progress=False).results)


@pytest.mark.parametrize('data, feature', [('linear', 'grp'), ('net', ['x0', 'x2'])])
def test_weights_of_levels_and_pairs_count_as_repeated_rows(request, data, feature):
    learn, df = request.getfixturevalue(data)
    w = np.random.default_rng(1).integers(0, 3, len(df))  # a zero drops the row
    weighted = learn.accumulated_local_effects(feature, df=df, sample_weight=w, bins=6, show_progress=False)
    repeated = learn.accumulated_local_effects(feature, df=df.loc[df.index.repeat(w)], bins=6, show_progress=False)
    pd.testing.assert_frame_equal(weighted.results.drop(columns='count'), repeated.results.drop(columns='count'), atol=1e-5)
    assert weighted.weighted and not repeated.weighted


def test_every_output_of_a_classifier(classification):
    learn, df = classification
    ale = learn.accumulated_local_effects('a', df=df.iloc[:600], output='yes', show_progress=False)
    assert ale.outputs == ['no', 'yes'] and ale.shown() == ['yes']
    np.testing.assert_allclose(ale.results[['no', 'yes']].sum(axis=1), 0, atol=1e-5)
    assert ale.results.yes.iloc[-1] > 0.3  # `a` raises the probability of yes
    ale.plot(output=['no', 'yes'], compare='pd')
    cat = learn.accumulated_local_effects('kind', df=df.iloc[:600], show_progress=False)
    assert set(cat.results.kind) == {'u', 'v', 'w'}


def test_bad_input_refused_before_any_forward(linear):
    learn, df = linear
    calls = []
    hook = learn.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        for kwargs, message in [(dict(feature='size'), "unknown feature 'size'; the features are: grp, x, z, w"),
                                (dict(feature='y'), "'y' is the label the model predicts"),
                                (dict(feature='x', bins=1), '`bins` must be at least 2'),
                                (dict(feature='x', bins=2.5), '`bins` must be a whole number'),
                                (dict(feature=['x', 'x']), 'two different ones'),
                                (dict(feature=['x', 'grp']), 'two continuous features'),
                                (dict(feature='x', output='z'), "unknown output 'z'"),
                                (dict(feature='x', df=df, sample_weight=-np.ones(len(df))), 'negative weight'),
                                (dict(feature='x', df=df, sample_weight=np.r_[np.nan, np.ones(len(df)-1)]), 'NaN or infinite'),
                                (dict(feature='x', df=df, sample_weight=np.zeros(len(df))), 'zero for every row'),
                                (dict(feature='x', df=df, sample_weight=np.ones(3)), '3 weights for 600 rows'),
                                (dict(feature='x', df=df, sample_weight='weight'), "names column 'weight', which the data does not have"),
                                (dict(feature='x', sample_weight='weight'), "names column 'weight', which the data does not have"),
                                (dict(feature='x', df=df, sample_weight='z'), "'z', a feature of the learner"),
                                (dict(feature='x', df=df.values), '`df` must be a pandas DataFrame'),
                                (dict(feature='x', show_progress='no'), '`show_progress` must be True or False')]:
            with pytest.raises((ValueError, TypeError), match=None) as e: learn.accumulated_local_effects(**kwargs)
            assert message in str(e.value), (kwargs, str(e.value))
    finally: hook.remove()
    assert not calls


def test_learner_frame_and_random_state_unchanged(net):
    learn, seen = net
    snap, before = snapshot(learn), seen.copy()
    states = (torch.get_rng_state(), np.random.get_state()[1].copy())
    ale = learn.accumulated_local_effects('x0', df=seen, show_progress=False)
    ale.partial_dependence()
    learn.accumulated_local_effects(['x0', 'x2'], df=seen, bins=4, show_progress=False)
    assert_unchanged(learn, snap)
    pd.testing.assert_frame_equal(seen, before)
    assert torch.equal(torch.get_rng_state(), states[0]) and np.array_equal(np.random.get_state()[1], states[1])
    with pytest.raises(ValueError): learn.accumulated_local_effects('x0', df=seen.assign(x0=np.nan), show_progress=False)
    assert_unchanged(learn, snap)


def test_quantile_edges_unweighted_equal_equally_weighted():
    "Without weights the edges come from a plain sort; equal weights (through the weighted, stable sort) give the same edges, ties included"
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=1001), rng.integers(0, 7, 500).astype(float), np.repeat(rng.normal(size=40), 25)):
        for bins in (2, 7, 20, 64):
            edges = quantile_edges(x, bins)
            np.testing.assert_array_equal(edges, quantile_edges(x, bins, np.full(len(x), 2.)))
            np.testing.assert_array_equal(edges, quantile_edges(x, bins, np.ones(len(x))))
            assert edges[0] == x.min() and edges[-1] == x.max() and np.all(np.diff(edges) > 0)
