"Interactions: Friedman's H (`learn.interaction_strength`) and SHAP interaction values (`learn.shap_values(interactions=True)`)"
import itertools, math, warnings
from contextlib import contextmanager
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import train_tabular


def product_df(n=1200, seed=0):
    "y = x0 + 2·x1·x2 + effect(c0) + noise, and an unused `x3`"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(size=n) for c in ('x0', 'x1', 'x2', 'x3')})
    df['c0'] = rng.choice(list('abc'), n)
    df['y'] = df.x0 + 2*df.x1*df.x2 + df.c0.map(dict(a=-1., b=0., c=1.)) + 0.1*rng.normal(size=n)
    return df


@pytest.fixture(scope='module')
def product():
    df = product_df()
    return train_tabular(df, ['c0'], ['x0', 'x1', 'x2', 'x3'], 'y', epochs=8), df


def wide_df(n=1500, seed=0):
    "Twelve players, beyond `exact_limit`: y = x0 + 2·x1·x2 - x3·x4 + effect(c0)·x5 + noise, the rest unused"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'x{i}': rng.normal(size=n) for i in range(10)})
    df['c0'], df['c1'] = rng.choice(list('abc'), n), rng.choice(list('pq'), n)
    df['y'] = df.x0 + 2*df.x1*df.x2 - df.x3*df.x4 + df.c0.map(dict(a=-1., b=0., c=1.))*df.x5 + 0.1*rng.normal(size=n)
    return df


@pytest.fixture(scope='module')
def wide():
    df = wide_df()
    return train_tabular(df, ['c0', 'c1'], [f'x{i}' for i in range(10)], 'y', epochs=4), df


@pytest.fixture(scope='module')
def additive():
    "A network with no hidden layer: its prediction is a sum of one function per feature"
    df = product_df(600, seed=1)
    return train_tabular(df, ['c0'], ['x0', 'x1', 'x2', 'x3'], 'y', epochs=2, layers=()), df


def test_near_copy_no_false_interaction():
    "A feature and its near copy (correlation 0.995) in a model that adds them up: their pair's H is defined and near zero, not interacting"
    df = product_df(600, seed=2)
    df['x0_copy'] = df.x0 + 0.1*np.random.default_rng(3).normal(size=len(df))
    learn = train_tabular(df, ['c0'], ['x0', 'x0_copy', 'x1', 'x2'], 'y', epochs=2, layers=())
    res = learn.interaction_strength(df, features=['x0', 'x0_copy', 'x1'], n_rows=200, seed=0, show_progress=False)
    copy = res.pairs[(res.pairs.feature_1 == 'x0') & (res.pairs.feature_2 == 'x0_copy')].iloc[0]
    assert np.corrcoef(df.x0, df.x0_copy)[0, 1] > 0.99
    assert not np.isnan(copy.h) and copy.h < 0.01 and not copy.interacting


def test_standard_error_covers_the_shared_background():
    "Rows and background groups drawn anew 400 times: H² is unbiased and its standard error matches its spread, though each background draw moves every row's partial dependence at once"
    def draw(rng, n=300):
        a, b = rng.normal(size=(2, n))
        u = np.tanh(a + b)  # how one background group's draw moves each row's partial dependence
        noisy = lambda v: v[:, None] + 0.3*rng.normal(size=n_groups)[None]*u[:, None] + 0.05*rng.normal(size=(n, n_groups))
        return h_statistic(noisy(a + b), noisy(a + b + 0.3*a*b))[:2]
    rng = np.random.default_rng(0)
    h2, se = np.array([draw(rng) for _ in range(400)]).T
    truth = 0.3**2/(2 + 0.3**2)  # var(0.3·a·b) / var(a + b + 0.3·a·b)
    assert abs(h2.mean() - truth) < 4*h2.std(ddof=1)/np.sqrt(len(h2))
    assert 0.8 < se.mean()/h2.std(ddof=1) < 1.3  # two halves and the rows' variance alone: 0.15 here


@contextmanager
def counting(learn):
    "A list that grows by one at each forward pass of `learn`'s model, while inside"
    calls = []
    hook = learn.model.register_forward_pre_hook(lambda m, i: calls.append(1))
    try: yield calls
    finally: hook.remove()


def test_product_pair_strongest(product):
    learn, df = product
    res = learn.interaction_strength(df.iloc[-300:], n_rows=300, seed=0, show_progress=False)
    top = res.pairs.iloc[0]
    assert {top.feature_1, top.feature_2} == {'x1', 'x2'} and top.interacting
    assert top.h > 0.9 and top.strength > 5*res.pairs.strength.iloc[1]
    assert res.results.feature.iloc[0] in ('x1', 'x2') and res.results.feature.iloc[1] in ('x1', 'x2')
    m = res.matrix
    assert m.loc['x1', 'x2'] == m.loc['x2', 'x1'] == top.h and np.isnan(m.loc['x1', 'x1'])
    assert list(m.index) == list(m.columns) and len(m) == 5


def test_additive_model_no_interactions(additive):
    learn, df = additive
    res = learn.interaction_strength(df, n_rows=200, seed=0, show_progress=False)
    assert not res.pairs.interacting.any()
    assert (res.pairs.h < 0.01).all() and (res.pairs.ci_low <= res.pairs.h).all() and (res.pairs.h <= res.pairs.ci_high).all()
    assert (res.results.importance < 0.01).all()


def test_units_groups_and_na(regression):
    learn, df = regression
    res = learn.interaction_strength(df.iloc[-200:], n_rows=100, n_background=40, seed=0, show_progress=False,
                                     groups={'noise': ['noise1', 'noise2']})
    assert set(res.names) == {'x1', 'x3', 'x4', 'grp', 'noise'}
    assert res.results.set_index('feature').loc['x3', 'columns'] == ['x3', 'x3_na']
    assert len(res.pairs) == 10
    sub = learn.interaction_strength(df.iloc[-200:], features=['x3_na', 'x1'], n_rows=100, n_background=40, seed=0, show_progress=False)
    assert sub.names == ['x3', 'x1'] and len(sub.pairs) == 1


def test_seeds_bit_for_bit(regression):
    learn, df = regression
    run = lambda seed: learn.interaction_strength(df.iloc[-200:], n_rows=80, n_background=20, seed=seed, show_progress=False)
    a, b, c = run(3), run(3), run(4)
    pd.testing.assert_frame_equal(a.pairs, b.pairs, check_exact=True)
    pd.testing.assert_frame_equal(a.results, b.results, check_exact=True)
    assert not a.pairs.h.equals(c.pairs.h)


def test_state_unchanged(regression):
    learn, df = regression
    before, frame = get_random_states(), df.copy()
    weights = [p.detach().clone() for p in learn.model.parameters()]
    training, cbs = learn.model.training, list(learn.cbs)
    learn.interaction_strength(df.iloc[-100:], n_rows=50, n_background=10, seed=0, show_progress=False)
    after = get_random_states()
    assert torch.equal(before['torch_state'], after['torch_state']) and before['numpy_state'][1].tolist() == after['numpy_state'][1].tolist()
    assert before['random_state'] == after['random_state']
    pd.testing.assert_frame_equal(df, frame)
    assert all(torch.equal(a, b) for a, b in zip(weights, learn.model.parameters()))
    assert learn.model.training == training and list(learn.cbs) == cbs


@pytest.mark.parametrize('kwargs, message', [
    (dict(features=['x1', 'zzz']), "unknown feature 'zzz'"),
    (dict(features=['x1', 'x1']), "names 'x1' twice"),
    (dict(features=['x3', 'x3_na']), "names 'x3' twice"),
    (dict(features=['x1']), 'at least two units'),
    (dict(features='x1'), 'list of feature names'),
    (dict(groups={'all': ['x1', 'x3', 'x4', 'noise1', 'noise2', 'grp']}), 'at least two units'),
    (dict(n_rows=1), '`n_rows` must be at least 2'),
    (dict(n_rows=2.5), '`n_rows` must be a whole number'),
    (dict(n_background=1), '`n_background` must be at least 2'),
    (dict(output='zzz'), "unknown output 'zzz'"),
    (dict(level=1.5), '`level` must be in'),
    (dict(seed=-1), '`seed` must be between'),
])
def test_bad_input_before_any_forward(regression, kwargs, message):
    learn, df = regression
    with counting(learn) as calls, pytest.raises((ValueError, TypeError), match=message.replace('(', r'\(')):
        learn.interaction_strength(df.iloc[-50:], show_progress=False, **kwargs)
    assert not calls


def test_more_rows_than_data_warns(regression):
    learn, df = regression
    with pytest.warns(UserWarning, match='using all of them'):
        res = learn.interaction_strength(df.iloc[-30:], n_rows=500, n_background=10, seed=0, show_progress=False)
    assert res.n_rows == 30


def test_classifier_outputs(classification):
    learn, df = classification
    res = learn.interaction_strength(df.iloc[-100:], n_rows=60, n_background=20, seed=0, show_progress=False)
    assert res.output == 'yes' and res.outputs == ['no', 'yes']
    no = res.select('no')
    # two classes: the probabilities sum to one, so their partial dependences, and the H of each pair, agree
    np.testing.assert_allclose(no.pairs.sort_values(['feature_1', 'feature_2']).h2.to_numpy(),
                               res.pairs.sort_values(['feature_1', 'feature_2']).h2.to_numpy(), rtol=1e-5, atol=1e-7)  # float32 probabilities
    with pytest.raises(ValueError, match="unknown output"): res.select('maybe')


def brute_interactions(learn, rows, bg, units):
    "SHAP interaction values by hand: each coalition's mean model output over `bg` with the coalition's columns from the row"
    eng_r, eng_b = Engine(learn, df=rows, with_labels=False), Engine(learn, df=bg, with_labels=False)
    xc, xk, bc, bk = eng_r.data.cats, eng_r.data.conts, eng_b.data.cats, eng_b.data.conts
    m = len(units)
    model = learn.model.eval()
    def v(r, coalition):
        cats, conts = bc.clone(), bk.clone()
        for p in coalition:
            cats[:, units[p].cat_idx] = xc[r, units[p].cat_idx]
            conts[:, units[p].cont_idx] = xk[r, units[p].cont_idx]
        with torch.no_grad(): return model(cats, conts).double().mean(0).numpy()
    out = np.zeros((len(xc), m, m, 1))
    for r in range(len(xc)):
        values = {s: v(r, s) for k in range(m + 1) for s in itertools.combinations(range(m), k)}
        for i, j in itertools.combinations(range(m), 2):
            rest = [p for p in range(m) if p not in (i, j)]
            total = 0
            for k in range(m - 1):
                for s in itertools.combinations(rest, k):
                    w = math.factorial(k)*math.factorial(m - k - 2)/(2*math.factorial(m - 1))
                    key = lambda extra: tuple(sorted(s + extra))
                    total = total + w*(values[key((i, j))] - values[key((i,))] - values[key((j,))] + values[s])
            out[r, i, j] = out[r, j, i] = total
    return out


def test_shap_interaction_values_brute_force(regression):
    learn, df = regression
    rows, bg = df.iloc[-4:].drop(columns='y'), df.iloc[:30].drop(columns='y')
    sv = learn.shap_values(rows, background=bg, interactions=True, seed=0, show_progress=False)
    inter = sv.all_interactions
    assert inter.shape == (4, 6, 6, 1)
    brute = brute_interactions(learn, rows, bg, sv.units)
    off = ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(inter[:, off], brute[:, off], rtol=1e-5, atol=1e-5*np.abs(brute).max())
    np.testing.assert_allclose(inter.sum(2), sv.all_values, rtol=1e-9, atol=1e-9)  # rows: the Shapley values
    np.testing.assert_allclose(sv.interaction_values.sum((1, 2)), sv.predictions - sv.base_value, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inter, inter.transpose(0, 2, 1, 3))
    assert sv.interactions.shape == (6, 6) and (sv.interactions.to_numpy() >= 0).all()


def test_shap_interactions_product(product):
    learn, df = product
    sv = learn.shap_values(df.iloc[-40:], interactions=True, n_background=40, seed=0, show_progress=False)
    table = sv.interactions.to_numpy().copy()
    np.fill_diagonal(table, 0)
    i, j = np.unravel_index(table.argmax(), table.shape)
    assert {sv.names[i], sv.names[j]} == {'x1', 'x2'}
    assert sv.select(sv.output).interaction_values.shape == (40, 5, 5)
    ax = sv.dependence('x1')
    shap = pytest.importorskip('shap')
    assert sv.to_shap(interactions=True).values.shape == (40, 5, 5) and sv.to_shap().values.shape == (40, 5)
    assert ax.figure.axes[-1].get_ylabel() == 'x2'  # coloured by the feature interacting most with x1


def test_shap_interactions_refused(regression):
    learn, df = regression
    with counting(learn) as calls:
        with pytest.raises(ValueError, match='`max_evals`=21 is too small: .* interaction values need, .* take 22 evaluations'):
            learn.shap_values(df.iloc[-5:], interactions=True, max_evals=21, show_progress=False)  # 6 players: 2 + 4·5
        with pytest.raises(TypeError, match='`interactions` must be True or False'):
            learn.shap_values(df.iloc[-5:], interactions='yes', show_progress=False)
    assert not calls
    sv = learn.shap_values(df.iloc[-3:], n_background=10, seed=0, show_progress=False)
    with pytest.raises(ValueError, match='no interaction values'): sv.interaction_values


def test_plots(product):
    learn, df = product
    res = learn.interaction_strength(df.iloc[-100:], n_rows=100, n_background=20, seed=0, show_progress=False)
    ax = res.plot(top=4)
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert len(shown) == 4 and abs(shown.index('x1') - shown.index('x2')) == 1  # the interacting pair side by side
    assert len(res.plot(top=3, kind='pairs').patches) == 3 and len(res.plot(kind='bar').patches) == 5
    axs = res.plot_pair('x2', 'x1')
    assert len(axs) == 3 and axs[2].get_title() == 'difference: the interaction'
    with pytest.raises(ValueError, match="unknown kind 'pie'"): res.plot(kind='pie')
    with pytest.raises(ValueError, match="unknown unit 'x9'"): res.plot_pair('x1', 'x9')


def test_shap_interactions_equal_shap_exact_two_players(product):
    "With two players Lundberg et al.'s values and the index shap's `Exact` computes coincide: ours equal shap's on the same model, background and rows"
    shap = pytest.importorskip('shap')
    learn, df = product
    rows, bg = df.iloc[-6:].drop(columns='y'), df.iloc[:25].drop(columns='y')
    groups = {'a': ['x0', 'x1', 'c0'], 'b': ['x2', 'x3']}
    sv = learn.shap_values(rows, background=bg, groups=groups, interactions=True, seed=0, show_progress=False)
    pool = Engine(learn, df=pd.concat([rows, bg]), with_labels=False).data
    model = learn.model.eval()
    def f(z):  # column p of `z`: the pool row whose values player p takes
        z = torch.as_tensor(z).long()
        cats, conts = pool.cats[z[:, 0]].clone(), pool.conts[z[:, 0]].clone()
        for p, u in enumerate(sv.units):
            cats[:, u.cat_idx], conts[:, u.cont_idx] = pool.cats[z[:, p]][:, u.cat_idx], pool.conts[z[:, p]][:, u.cont_idx]
        with torch.no_grad(): return model(cats, conts)[:, 0].double().numpy()
    X = np.repeat(np.arange(len(rows))[:, None], 2, 1).astype(float)
    B = np.repeat(np.arange(len(rows), len(rows) + len(bg))[:, None], 2, 1).astype(float)
    theirs = shap.explainers.Exact(f, shap.maskers.Independent(B, max_samples=len(B)))(X, interactions=True, silent=True).values
    assert sv.interaction_values.shape == theirs.shape == (6, 2, 2)
    np.testing.assert_allclose(sv.interaction_values, theirs, rtol=1e-5, atol=1e-5*np.abs(theirs).max())
    assert np.abs(theirs[:, 0, 1]).max() > 1e-3  # the pair does interact: the check is not of zeros


def test_sampled_shap_interactions_match_exact(wide):
    "Beyond `exact_limit` the interaction values are sampled: within their standard errors of the exact ones (`max_evals` >= 2**12)"
    learn, df = wide
    rows, bg = df.iloc[-10:].drop(columns='y'), df.iloc[:20].drop(columns='y')
    exact = learn.shap_values(rows, background=bg, interactions=True, max_evals=2**12, seed=0, show_progress=False)
    assert exact.exact and not exact.all_interaction_std.any()
    run = lambda seed: learn.shap_values(rows, background=bg, interactions=True, max_evals=2 + 4*11*40, seed=seed, show_progress=False)
    sv = run(0)
    assert not sv.exact and sv.n_pairs == 40*20 and sv.all_interactions.shape == sv.all_interaction_std.shape == (10, 12, 12, 1)
    assert (sv.all_interaction_std > 0).all()
    z = (sv.all_interactions - exact.all_interactions)/sv.all_interaction_std
    assert 0.8 < np.sqrt((z**2).mean()) < 1.25 and np.abs(z).max() < 4.5  # 1440 cells: errors the size the errors say
    np.testing.assert_allclose(sv.all_interactions.sum(2), sv.all_values, rtol=0, atol=1e-12)  # rows: the Shapley values
    np.testing.assert_allclose(sv.interaction_values.sum((1, 2)), sv.predictions - sv.base_value, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sv.all_interactions, sv.all_interactions.transpose(0, 2, 1, 3))
    assert sv.interaction_std.shape == (10, 12, 12) and 'with interaction values' in repr(sv)
    again, other = run(0), run(1)
    np.testing.assert_array_equal(again.all_interactions, sv.all_interactions)
    np.testing.assert_array_equal(again.all_interaction_std, sv.all_interaction_std)
    assert not np.array_equal(other.all_interactions, sv.all_interactions)
    table = sv.interactions.to_numpy().copy()
    np.fill_diagonal(table, 0)
    i, j = np.unravel_index(table.argmax(), table.shape)
    assert {sv.names[i], sv.names[j]} == {'x1', 'x2'}


def test_sampled_shap_interactions_by_default_beyond_exact_limit(wide):
    "Twelve players and no `max_evals`: sampled at the default budget, on the permutations the same call without interactions takes"
    learn, df = wide
    rows = df.iloc[-3:].drop(columns='y')
    sv = learn.shap_values(rows, n_background=10, interactions=True, seed=0, show_progress=False)
    assert not sv.exact and sv.max_evals == 2 + 5*4*11 and sv.n_pairs == 5*10
    plain = learn.shap_values(rows, n_background=10, seed=0, show_progress=False)
    assert plain.max_evals == 2 + 5*2*11 and plain.n_pairs == sv.n_pairs
    scale = np.abs(plain.all_values).max()
    np.testing.assert_allclose(sv.all_values, plain.all_values, rtol=0, atol=1e-9*scale)
    np.testing.assert_allclose(sv.all_std, plain.all_std, rtol=0, atol=1e-9*scale)


def test_sampled_shap_interactions_of_a_classifier(classification):
    "Every class at once: rows add up per class, and the two classes of a binary classifier mirror each other (their probabilities sum to one)"
    learn, df = classification
    sv = learn.shap_values(df.iloc[-8:], n_background=30, interactions=True, max_evals=15, seed=0, show_progress=False)  # 4 players: 14 to 15 samples
    assert not sv.exact and sv.all_interactions.shape == sv.all_interaction_std.shape == (8, 4, 4, 2)
    np.testing.assert_allclose(sv.all_interactions.sum(2), sv.all_values, rtol=0, atol=1e-12)
    for c in sv.outputs:
        s = sv.select(c)
        np.testing.assert_allclose(s.interaction_values.sum((1, 2)), s.predictions - s.base_value, rtol=0, atol=1e-12)
        assert s.interaction_std.shape == (8, 4, 4) and (s.interaction_std > 0).all()
    np.testing.assert_allclose(sv.all_interactions[..., 0], -sv.all_interactions[..., 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(sv.all_interaction_std[..., 0], sv.all_interaction_std[..., 1], rtol=1e-4, atol=1e-7)
