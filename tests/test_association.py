"Association for all pairs at once: the same numbers as the pairwise statistics, awkward columns included"

import numpy as np, pandas as pd, pytest
from fastai.tabular.all import *
from fastai_featimp.all import *
from fastai_featimp import association
from conftest import train_tabular


def pairwise(codes, values):
    "The association matrix of the columns of `codes` then `values`, one pair at a time with the pairwise statistics"
    cols = [('cat', c) for c in codes.T] + [('cont', v) for v in values.T]
    def one(a, b):
        if a[0] == b[0]: return cramers_v(a[1], b[1]) if a[0] == 'cat' else rank_association(a[1], b[1])
        return correlation_ratio(a[1], b[1]) if a[0] == 'cat' else correlation_ratio(b[1], a[1])
    return np.array([[1. if p == q else one(a, b) for q, b in enumerate(cols)] for p, a in enumerate(cols)])


def mixed_columns(seed, n=300):
    """Categorical codes and continuous values with associations of every kind, and the awkward columns: a
    constant, a single level, as many levels as rows, ties, unused codes, a categorical that fixes another"""
    rng = np.random.default_rng(seed)
    levels = rng.integers(2, 30, 6)
    codes = np.column_stack([rng.integers(0, k, n) for k in levels])
    codes[:, 1] = codes[:, 0] % 3 + 3*(rng.random(n) < 0.2)  # partly decided by column 0, codes 0..5
    codes = np.column_stack([codes, np.full(n, 4), rng.permutation(n), 10*rng.integers(0, 3, n)])
    values = rng.normal(size=(n, 6))
    values[:, 0] = codes[:, 0] + rng.normal(size=n)  # follows a categorical
    values[:, 1] = np.exp(values[:, 0]) + 0.1*rng.normal(size=n)  # monotone in another continuous column
    values[:, 2] = 1.5  # constant
    values[:, 3] = np.round(values[:, 3])  # ties
    return codes, values


@pytest.mark.parametrize('seed', range(5))
def test_matrix_is_the_pairwise_statistics(seed):
    codes, values = mixed_columns(seed)
    before = codes.copy(), values.copy()
    assoc = association_matrix(codes, values)
    expected = pairwise(codes, values)
    np.testing.assert_allclose(assoc, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(assoc, assoc.T)
    np.testing.assert_array_equal(codes, before[0]); np.testing.assert_array_equal(values, before[1])
    n_cat = codes.shape[1]
    # the awkward columns are associated with nothing, exactly, as the pairwise statistics say
    for i in (6, 7, n_cat + 2):  # one level, one row per level, constant
        assert (np.delete(assoc[i], i) == 0).all() and (np.delete(expected[i], i) == 0).all()
    assert assoc[0, 1] > 0.5 and assoc[0, n_cat] > 0.9 and assoc[n_cat, n_cat + 1] > 0.9


@pytest.mark.parametrize('batch, max_cells', [(1000, 2**20), (2**16, 50), (600, 200)])
def test_batches_and_sparse_tables(monkeypatch, batch, max_cells):
    "Small batches and a small cell limit send the pairs through every path of the counting; the numbers stay"
    monkeypatch.setattr(association, '_batch', batch)
    monkeypatch.setattr(association, '_max_cells', max_cells)
    codes, values = mixed_columns(0)
    np.testing.assert_allclose(association_matrix(codes, values), pairwise(codes, values), rtol=0, atol=1e-12)


def test_high_cardinality_pair():
    "Two columns of over a thousand levels, one a relabelling of the other: a table too sparse to count densely"
    rng = np.random.default_rng(0)
    shop = rng.integers(0, 1200, 4000)
    codes = np.column_stack([shop, (7*shop) % 1200, rng.integers(0, 5, 4000)])
    assert len(np.unique(shop))**2 > association._max_cells
    values = np.column_stack([shop/100 + rng.normal(size=4000)])
    assoc = association_matrix(codes, values)
    np.testing.assert_allclose(assoc, pairwise(codes, values), rtol=0, atol=1e-12)
    assert assoc[0, 1] == pytest.approx(1)


def test_one_kind_of_column_only():
    rng = np.random.default_rng(0)
    codes, values = rng.integers(0, 4, (50, 3)), rng.normal(size=(50, 2))
    np.testing.assert_allclose(association_matrix(codes, np.zeros((50, 0))), pairwise(codes, np.zeros((50, 0))), atol=1e-12)
    np.testing.assert_allclose(association_matrix(np.zeros((50, 0), int), values), pairwise(np.zeros((50, 0)), values), atol=1e-12)
    assert association_matrix(codes[:, :1], np.zeros((50, 0))).tolist() == [[1.]]


def test_units_take_the_strongest_pair_of_columns():
    rng = np.random.default_rng(0)
    m = rng.uniform(size=(12, 12)); m = (m + m.T)/2; np.fill_diagonal(m, 1)
    units = [[0, 5], [3], [1, 2, 11], [4], [6, 7, 8, 9, 10], [2, 3]]  # the last overlaps two others, as groups may
    expected = np.array([[1. if a is b else m[np.ix_(a, b)].max() for b in units] for a in units])
    np.testing.assert_array_equal(association.unit_association(m, units), expected)


def shops_df(n=500, seed=0):
    "Mixed features: `region` decides `zone` in part and moves `income`; `rate` has missing values; `code` many levels"
    rng = np.random.default_rng(seed)
    region = rng.choice(list('nesw'), n)
    df = pd.DataFrame({'region': region, 'zone': np.where(rng.random(n) < 0.7, pd.Series(region).map(dict(n='a', e='a', s='b', w='c')),
                                                            rng.choice(list('abc'), n)),
                       'code': rng.integers(0, 60, n).astype(str), 'income': pd.Series(region).map(dict(n=0., e=1., s=2., w=3.)) + rng.normal(size=n),
                       'rate': rng.normal(size=n), 'score': np.round(rng.normal(size=n))})
    df['spend'] = np.exp(df.income) + 0.2*rng.normal(size=n)
    df['y'] = df.income + df.rate + rng.normal(size=n)
    df.loc[rng.random(n) < 0.2, 'rate'] = np.nan
    return df


@pytest.fixture(scope='module')
def shops():
    "A small trained learner on `shops_df`"
    return train_tabular(shops_df(), ['region', 'zone', 'code'], ['income', 'rate', 'score', 'spend'], 'y', epochs=1, layers=(16,))


def test_feature_correlation_is_the_pairwise_statistics(shops):
    learn = shops
    matrix = learn.feature_correlation().matrix
    to = learn.dls.valid.dataset
    xs = learn.dls.valid.xs
    codes, values = xs[to.cat_names].to_numpy(), xs[to.cont_names].to_numpy().astype(np.float64)
    columns = pd.DataFrame(pairwise(codes, values), index=to.cat_names + to.cont_names, columns=to.cat_names + to.cont_names)
    owned = {'rate': ['rate', 'rate_na']}
    features = ['region', 'zone', 'code', 'income', 'rate', 'score', 'spend']
    assert list(matrix.index) == features
    expected = [[1. if a == b else columns.loc[owned.get(a, [a]), owned.get(b, [b])].to_numpy().max() for b in features]
                for a in features]
    np.testing.assert_allclose(matrix.to_numpy(), expected, rtol=0, atol=1e-12)
    assert matrix.loc['region', 'income'] > 0.5 and matrix.loc['income', 'spend'] > 0.9


def test_conditioning_picks_the_strongest_features_pair_by_pair(shops):
    eng = Engine(shops)
    feats = eng.features
    units = group_features(feats, {'region+zone': ['region', 'zone']})
    columns = eng.association()
    cond = Conditioning(eng, units, columns, min_association=0.1, max_conditioning=3)
    for u in units:
        others = {n: columns.loc[u.columns, f.columns].to_numpy().max() for n, f in feats.items() if not set(f.columns) & set(u.columns)}
        expected = sorted((n for n in others if others[n] >= 0.1), key=lambda n: -others[n])[:3]
        assert cond.conditioned_on[u.name] == expected
    assert cond.conditioned_on['region+zone'][0] == 'income' and cond.conditioned_on['income'][:2] == ['spend', 'region']
