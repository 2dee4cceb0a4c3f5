"Shapley values and SAGE: exact against brute force, additivity, known additive models, `_na` companions and groups, seeds, bad input"
import itertools, math, random
import numpy as np, pandas as pd, pytest
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import ground_truth_df, train_tabular


def encoded(learn, df):
    "`df`'s rows encoded by the learner's procs, as (cats, conts)"
    dl = learn.dls.test_dl(df, with_labels=False)
    return torch.cat([b[0] for b in dl]), torch.cat([b[1] for b in dl])


def brute_force(learn, df, background, players):
    "Shapley values by enumerating every coalition, one model call per row, coalition and background row set"
    (xc,xk),(bc,bk) = encoded(learn, df),encoded(learn, background)
    cat_names,cont_names = list(learn.dls.cat_names),list(learn.dls.cont_names)
    m,model = len(players),learn.model.eval()
    values = np.zeros((len(df), m))
    for r in range(len(df)):
        v = {}
        for size in range(m+1):
            for coalition in itertools.combinations(range(m), size):
                cats,conts = bc.clone(),bk.clone()
                for p in coalition:
                    for c in players[p]:
                        if c in cat_names: cats[:, cat_names.index(c)] = xc[r, cat_names.index(c)]
                        else: conts[:, cont_names.index(c)] = xk[r, cont_names.index(c)]
                with torch.no_grad(): v[coalition] = model(cats, conts).double().mean().item()
        for i in range(m):
            for size in range(m):
                for s in itertools.combinations([p for p in range(m) if p != i], size):
                    weight = math.factorial(size)*math.factorial(m-size-1)/math.factorial(m)
                    values[r, i] += weight*(v[tuple(sorted(s + (i,)))] - v[s])
    return values


def test_exact_equals_brute_force(regression):
    learn,df = regression
    rows,background = df.iloc[-5:],df.iloc[:20]
    sv = learn.shap_values(rows, background=background, show_progress=False)
    players = [['grp'], ['x1'], ['x3', 'x3_na'], ['x4'], ['noise1'], ['noise2']]
    assert sv.exact and list(sv.values.columns) == [p[0] for p in players]
    expected = brute_force(learn, rows, background, players)
    np.testing.assert_allclose(sv.values.to_numpy(), expected, rtol=1e-5, atol=1e-5*np.abs(expected).max())
    assert list(sv.values.index) == list(rows.index)


def additive(values, predictions, base):
    "How far each row's values are from summing to its prediction minus the base value"
    return np.abs(values.sum(1).to_numpy() - (predictions.to_numpy() - base)).max()


@pytest.mark.parametrize('max_evals', [None, 12, 30])
def test_additivity(regression, classification, max_evals):
    for learn,df in (regression, classification):
        sv = learn.shap_values(df.iloc[-30:], n_background=40, max_evals=max_evals, seed=0, show_progress=False)
        assert sv.exact == (max_evals is None or max_evals >= 2**len(sv.names))
        for output in sv.outputs:
            s = sv.select(output)
            assert additive(s.values, s.predictions, s.base_value) < 1e-9


def test_classifier_outputs(classification):
    learn,df = classification
    sv = learn.shap_values(df.iloc[-20:], n_background=30, seed=0, show_progress=False)
    assert sv.outputs == ['no', 'yes'] and sv.output == 'yes'
    np.testing.assert_allclose(sv.predictions, learn.get_preds(dl=learn.dls.test_dl(df.iloc[-20:]))[0][:, 1].numpy(), atol=1e-6)
    # the two probabilities sum to one, so their Shapley values are opposite
    np.testing.assert_allclose(sv.select('no').values, -sv.values, atol=1e-6)
    assert learn.shap_values(df.iloc[-20:], n_background=30, output='no', seed=0, show_progress=False).output == 'no'


class Additive(nn.Module):
    "A fixed additive function of the regression learner's encoded inputs, called like a `TabularModel`: noise1 and noise2 unused"
    def __init__(self, missing_only=False):
        super().__init__()
        self.grp = nn.Parameter(tensor([0., -2., .5, 1., 2.]))  # codes: #na#, p, q, r, s
        self.missing_only = missing_only
    def terms(self, x_cat, x_cont):
        "Each feature's term: grp, x1, x3 (with its `_na` column, code 2 = missing), x4"
        missing = 2.*(x_cat[:, 1]==2)
        if self.missing_only: return {'x3': missing}
        return {'grp': self.grp[x_cat[:, 0]], 'x1': 3*x_cont[:, 0], 'x3': x_cont[:, 1]**2 + missing, 'x4': .5*x_cont[:, 2]}
    def forward(self, x_cat, x_cont): return sum(self.terms(x_cat, x_cont).values())[:, None]


def additive_learner(regression, missing_only=False):
    learn,df = regression
    return Learner(learn.dls, Additive(missing_only), loss_func=MSELossFlat()),df


def known_contributions(learn, rows, background):
    "Each feature's term on the row minus its mean over the background: the interventional Shapley value of an additive model"
    with torch.no_grad():
        x,b = learn.model.terms(*encoded(learn, rows)),learn.model.terms(*encoded(learn, background))
    return {f: (x[f] - b[f].mean()).double().numpy() for f in x}


@pytest.mark.filterwarnings('ignore:this learner was never trained')  # its weights are set by construction
@pytest.mark.parametrize('max_evals', [None, 22])
def test_additive_model_gives_known_contributions(regression, max_evals):
    learn,df = additive_learner(regression)
    rows,background = df.iloc[-40:],df.iloc[:50]
    sv = learn.shap_values(rows, background=background, max_evals=max_evals, seed=1, show_progress=False)
    for f,expected in known_contributions(learn, rows, background).items():
        np.testing.assert_allclose(sv.values[f], expected, atol=1e-5)
    assert (sv.values[['noise1', 'noise2']].to_numpy() == 0).all()
    assert (sv.std.to_numpy() < 1e-6).all()


@pytest.mark.filterwarnings('ignore:this learner was never trained')  # its weights are set by construction
def test_na_companion_moves_with_its_feature(regression):
    "A model that reads only `x3_na` credits `x3`, the one player that owns the column"
    learn,df = additive_learner(regression, missing_only=True)
    rows = df.iloc[-200:]
    sv = learn.shap_values(rows, n_background=60, seed=2, show_progress=False)
    assert 'x3_na' not in sv.values.columns and sv.results.set_index('feature').loc['x3', 'columns'] == ['x3', 'x3_na']
    others = sv.values.drop(columns='x3')
    assert (others.to_numpy() == 0).all()
    missing = rows.x3.isna().to_numpy()
    assert missing.any() and (sv.values.x3[missing] > 0).all() and (sv.values.x3[~missing] < 0).all()
    assert sv.data.x3[missing].isna().all()


@pytest.mark.filterwarnings('ignore:this learner was never trained')  # its weights are set by construction
def test_groups_are_one_player(regression):
    learn,df = additive_learner(regression)
    rows,background = df.iloc[-30:],df.iloc[:40]
    sv = learn.shap_values(rows, background=background, groups={'x1x4': ['x1', 'x4']}, show_progress=False)
    assert list(sv.values.columns) == ['x1x4', 'grp', 'x3', 'noise1', 'noise2']
    known = known_contributions(learn, rows, background)
    np.testing.assert_allclose(sv.values.x1x4, known['x1'] + known['x4'], atol=1e-5)
    assert isinstance(sv.data.x1x4.iloc[0], tuple)


@pytest.fixture(scope='module')
def seven(regression):
    "A regression learner with seven players: `ground_truth_df` and one more noise column"
    df = ground_truth_df(n=800, seed=3)
    df['noise3'] = np.random.default_rng(3).normal(size=len(df))
    return train_tabular(df, ['grp'], ['x1', 'x3', 'x4', 'noise1', 'noise2', 'noise3'], 'y', epochs=3),df


def test_sampled_within_standard_errors_of_exact(seven):
    learn,df = seven
    rows,background = df.iloc[-12:],df.iloc[:30]
    exact = learn.shap_values(rows, background=background, show_progress=False)
    sampled = learn.shap_values(rows, background=background, max_evals=2+2*6*3, seed=0, show_progress=False)
    assert exact.exact and not sampled.exact and sampled.n_pairs == 3*30
    diff,std = (sampled.values - exact.values).abs().to_numpy(),sampled.std.to_numpy()
    assert (std > 0).mean() > 0.9
    assert (diff <= 4*std + 1e-7).all()
    assert diff.mean() < 0.1*np.abs(exact.values.to_numpy()).mean()


def test_seeds_are_bit_for_bit(regression):
    learn,df = regression
    states = random.getstate(),np.random.get_state()[1].copy(),torch.get_rng_state().clone()
    run = lambda seed: learn.shap_values(df.iloc[-10:], n_background=20, max_evals=30, seed=seed, show_progress=False)
    a,b,c = run(5),run(5),run(6)
    assert np.array_equal(a.all_values, b.all_values) and np.array_equal(a.all_std, b.all_std)
    assert not np.array_equal(a.all_values, c.all_values)
    sage = lambda: learn.sage_importance(df.iloc[-100:], n_background=20, n_permutations=40, seed=5, show_progress=False)
    assert np.array_equal(sage().scores, sage().scores)
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert learn.model.training == False or all(m.training for m in learn.model.modules())


@pytest.mark.filterwarnings('ignore:this learner was never trained')  # its weights are set by construction
def test_sage_ranks_additive_features_by_variance(regression):
    learn,df = additive_learner(regression)
    rows,background = df.iloc[-600:].copy(),df.iloc[:100]
    with torch.no_grad(): rows['y'] = learn.model(*encoded(learn, rows))[:, 0].numpy()  # labels the model fits exactly
    sage = learn.sage_importance(rows, background=background, seed=0, show_progress=False)
    with torch.no_grad(): x,b = learn.model.terms(*encoded(learn, rows)),learn.model.terms(*encoded(learn, background))
    expected = {f: float(((x[f] - b[f].mean())**2).mean()) for f in x}  # the loss each term removes
    res = sage.results.set_index('feature')
    assert list(res.index[:4]) == sorted(expected, key=expected.get, reverse=True)
    for f,e in expected.items(): assert abs(res.importance[f] - e) < 5*res.std_error[f] + 0.02*max(expected.values())
    assert (res.loc[['noise1', 'noise2'], 'importance'] == 0).all()
    assert sage.converged and sage.ratio < 0.025 and (res.std_error > 0).any()


class Passthrough(Callback):
    "A batch callback that changes nothing, but makes the package run the whole model instead of its first-layer split"
    def after_pred(self): pass


@pytest.mark.parametrize('max_evals', [None, 40])
def test_first_layer_split_equals_whole_model(regression, max_evals):
    learn,df = regression
    kw = dict(df=df.iloc[-8:], n_background=30, max_evals=max_evals, seed=3, show_progress=False)
    data = Engine(learn).data
    with evaluating(learn): assert LinearInput.of(learn, data.cats, data.conts) is not None
    split = learn.shap_values(**kw)
    with learn.added_cbs(Passthrough()): whole = learn.shap_values(**kw)
    scale = np.abs(whole.values.to_numpy()).max()
    np.testing.assert_allclose(split.values.to_numpy(), whole.values.to_numpy(), rtol=1e-4, atol=1e-5*scale)


@pytest.mark.parametrize('cats,conts,kw', [
    (['k', 'j'], [], {}), ([], ['a', 'b'], {}), (['k'], ['a', 'b'], dict(y_range=(-5, 5))),
    (['k'], ['a', 'b'], dict(config=tabular_config(lin_first=False, ps=0.1, embed_p=0.1))),
])
def test_first_layer_split_on_every_layout(cats, conts, kw):
    "Only categoricals, only continuous, a `SigmoidRange`, batch norm and dropout before the linear layers: the split is taken and exact"
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'a': rng.normal(size=300), 'b': rng.normal(size=300), 'k': rng.choice(list('xyz'), 300), 'j': rng.choice(list('uv'), 300)})
    df['y'] = 2*df.a - df.a*df.b + (df.k=='x') + 0.5*(df.j=='u')
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=cats, cont_names=conts, y_names='y', bs=64)
    learn = tabular_learner(dls, layers=[16, 8], **kw)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2)
    data = Engine(learn).data
    with evaluating(learn): assert LinearInput.of(learn, data.cats, data.conts) is not None
    kw = dict(df=df.iloc[:5], n_background=20, seed=0, show_progress=False)
    split = learn.shap_values(**kw)
    with learn.added_cbs(Passthrough()): whole = learn.shap_values(**kw)
    np.testing.assert_allclose(split.values.to_numpy(), whole.values.to_numpy(), atol=1e-6)


@pytest.mark.parametrize('fixture,n_draws', [('regression', 3), ('regression', 8)])
def test_sage_draws_agree_with_the_whole_background(fixture, n_draws, request):
    "Jackknifed draws of a squared error (the default 3, and 8) estimate the same SAGE values as averaging over every background row, within the standard errors"
    learn,df = request.getfixturevalue(fixture)
    kw = dict(df=df.iloc[-300:], n_background=50, n_permutations=2400, seed=1, show_progress=False)
    drawn,whole = [learn.sage_importance(n_draws=k, **kw) for k in (None if n_draws==default_draws(learn, 50) else n_draws, 50)]
    assert drawn.n_draws == n_draws
    drawn,whole = [r.results.set_index('feature') for r in (drawn, whole)]
    assert drawn.std_error.gt(whole.std_error).mean() > 0.5  # draws cost precision per permutation...
    z = (drawn.importance - whole.importance)/np.hypot(drawn.std_error, whole.std_error)
    assert z.abs().max() < 4, z  # ...but no bias


def test_sage_of_a_classifier_averages_the_whole_background(classification):
    "A cross-entropy's jackknife over a few draws is biased, so a classifier's SAGE averages over every background row by default"
    learn,df = classification
    kw = dict(df=df.iloc[-200:], n_background=30, n_permutations=400, seed=1, show_progress=False)
    default,whole = learn.sage_importance(**kw),learn.sage_importance(n_draws=30, **kw)
    assert default.n_draws == 30
    pd.testing.assert_frame_equal(default.results, whole.results)


@pytest.mark.parametrize('method,bad,message', [
    ('shap_values', dict(df='drop x1'), "missing column"),
    ('shap_values', dict(background='one row'), "at least two rows"),
    ('shap_values', dict(background='labels only'), "only labels"),
    ('shap_values', dict(output='maybe'), "unknown output"),
    ('shap_values', dict(max_evals=5, groups=None), "too small"),
    ('sage_importance', dict(background='labels only'), "only labels"),
    ('sage_importance', dict(n_draws=1), "`n_draws`"),
    ('sage_importance', dict(threshold=1.5), "`threshold`"),
    ('sage_importance', dict(n_permutations=0), "`n_permutations`"),
    ('sage_importance', dict(groups=[['a', 'b', 'kind', 'junk']]), "at least two features"),
])
def test_bad_input_raises_before_any_evaluation(classification, method, bad, message):
    learn,df = classification
    kwargs = dict(df=df.iloc[-10:], n_background=20, show_progress=False)
    if bad.get('df') == 'drop x1': kwargs['df'] = df.iloc[-10:].drop(columns='a')
    elif 'background' in bad: kwargs['background'] = df.iloc[:1] if bad['background']=='one row' else df[['label']].iloc[:20]
    else: kwargs.update(bad)
    calls = []
    hook = learn.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message): getattr(learn, method)(**kwargs)
    finally: hook.remove()
    assert not calls


def test_to_shap_round_trips(regression):
    import shap  # in the dev extras: this round trip runs in `make test`, never skipped
    learn,df = regression
    sv = learn.shap_values(df.iloc[-15:], n_background=20, seed=0, show_progress=False)
    e = sv.to_shap()
    assert isinstance(e, shap.Explanation) and list(e.feature_names) == list(sv.values.columns)
    np.testing.assert_array_equal(e.values, sv.values.to_numpy())
    np.testing.assert_allclose(e.base_values, sv.base_value)
    assert e.display_data[0, 0] == sv.data.grp.iloc[0]
    shap.plots.waterfall(e[0], show=False); shap.plots.beeswarm(e, show=False)


def test_plots(regression):
    learn,df = regression
    sv = learn.shap_values(df.iloc[-25:], n_background=20, seed=0, show_progress=False)
    for kind in ('bar', 'beeswarm', 'box'): assert sv.plot(kind=kind).get_yticklabels()
    ax = sv.waterfall(df.index[-1], top=3)
    assert len(ax.patches) == 4  # three features and the rest
    assert sv.dependence('x1', colour='grp').collections and sv.dependence('grp').get_xticklabels()
    with pytest.raises(KeyError): sv.waterfall('nope')
