"Correlated features: association measures by hand, the correlation view, automatic groups, conditional permutation"

import numpy as np, pandas as pd, pytest, torch
from scipy import stats
from scipy.cluster import hierarchy
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import train_tabular


def by_feature(r): return r.results.set_index('feature')


def bergsma_v(table):
    "Bias-corrected Cramér's V written out from its definition, with scipy's chi-square (no continuity correction)"
    table = np.asarray(table, dtype=float)
    n, (r, k) = table.sum(), table.shape
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    phi2 = max(0, chi2/n - (r-1)*(k-1)/(n-1))
    return np.sqrt(phi2/min(r - (r-1)**2/(n-1) - 1, k - (k-1)**2/(n-1) - 1))


def rows_of(table):
    "Two label arrays whose cross-tabulation is `table`"
    pairs = [(f'r{i}', f'c{j}') for (i, j), count in np.ndenumerate(np.asarray(table)) for _ in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.mark.parametrize('table', [[[10, 2], [3, 9]], [[4, 1, 1], [0, 2, 4]], [[5, 0, 2], [1, 6, 1], [0, 2, 7]]])
def test_cramers_v_by_hand(table):
    x, y = rows_of(table)
    assert cramers_v(x, y) == pytest.approx(bergsma_v(table), abs=1e-12)


def test_cramers_v_hand_numbers():
    # [[4,1,1],[0,2,4]]: chi2 = 92/15 by hand, n = 12
    x, y = rows_of([[4, 1, 1], [0, 2, 4]])
    assert cramers_v(x, y) == pytest.approx(np.sqrt((92/180 - 2/11)/(2 - 1/11 - 1)))
    # a 2x2 table with no association at all: chi2 = 0, the correction clips phi2 at zero
    x, y = rows_of([[5, 5], [5, 5]])
    assert cramers_v(x, y) == 0
    # a perfect association, whatever the labels are called
    assert cramers_v(list('aabbcc'), list('zzxxyy')) == pytest.approx(1)


def kelley_epsilon(cats, values):
    "Kelley's bias-corrected correlation ratio written out from its definition, with pandas group means"
    values = pd.Series(values, dtype=float)
    n, k = len(values), len(set(cats))
    total = ((values - values.mean())**2).sum()
    within = ((values - values.groupby(list(cats)).transform('mean'))**2).sum()
    return np.sqrt(max(0, 1 - (n-1)/(n-k)*within/total))


def test_correlation_ratio_by_hand():
    # groups a: [1, 2, 3], b: [7, 8, 9]; grand mean 5; between = 3*9 + 3*9 = 54; total = 58; within = 4
    assert correlation_ratio(list('aaabbb'), [1, 2, 3, 7, 8, 9]) == pytest.approx(np.sqrt(1 - (5/4)*(4/58)))
    # three unequal groups: means 2, 5, 10 with counts 2, 1, 3 and grand mean 6.5
    cats, values = list('aabccc'), [1, 3, 5, 9, 10, 11]
    between = 2*(2-6.5)**2 + (5-6.5)**2 + 3*(10-6.5)**2
    total = sum((v-6.5)**2 for v in values)
    assert correlation_ratio(cats, values) == pytest.approx(np.sqrt(1 - (6-1)/(6-3)*(total-between)/total))
    assert correlation_ratio(cats, values) == pytest.approx(kelley_epsilon(cats, values))
    assert correlation_ratio(list('abab'), [1, 1, 1, 1]) == 0
    assert correlation_ratio(list('abcd'), [1, 2, 3, 4]) == 0  # one row per level: nothing left to estimate with
    # far more unrelated values within the groups than between: the correction clips at zero
    assert correlation_ratio(list('aabb'), [1, 5, 2, 4]) == 0


def test_identifier_like_categorical_is_not_associated_with_noise():
    """Uncorrected, a 500-level column on 1,000 rows explains about half of any variable's variance by chance.
    Corrected, ε² is 0 on average with a spread of about 0.045 here (η² is Beta(249.5, 250): sd 0.022, times
    (n-1)/(n-k) ≈ 2), so ε stays under 0.35 (ε² under 2.7 sd), far from the 0.7 at which features group."""
    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({'ident': rng.integers(0, 500, n).astype(str), 'g': rng.choice(list('pq'), n),
                       'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'y': rng.normal(size=n)})
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['ident', 'g'], cont_names=['x1', 'x2'],
                                     y_names='y', valid_idx=list(range(200, n)), bs=64)
    learn = tabular_learner(dls, layers=[8])
    m, valid = learn.feature_correlation().matrix, df.iloc[200:]
    for x in ('x1', 'x2'):
        plain = np.sqrt(valid[x].groupby(valid.ident).transform('mean').var(ddof=0)/valid[x].var(ddof=0))
        assert plain > 0.6 and m.loc['ident', x] < 0.35
    assert learn.feature_correlation().groups == {}
    res = learn.permutation_importance(groups='auto', conditional=True, n_repeats=1, seed=0, show_progress=False).results
    assert sorted(res.feature) == sorted(['ident', 'g', 'x1', 'x2'])
    assert all(not c for c in res.set_index('feature').loc[['x1', 'x2'], 'conditioned_on'])


def test_rank_association_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    for y in (x**3 + rng.normal(size=200), -np.exp(x), np.round(x + rng.normal(size=200))):  # noisy, negative, ties
        assert rank_association(x, y) == pytest.approx(abs(stats.spearmanr(x, y)[0]), abs=1e-12)


@pytest.fixture(scope='module')
def mixed():
    "An untrained learner on mixed data: the association only needs the encoded data"
    rng = np.random.default_rng(0)
    n = 600
    colour = rng.choice(list('rgb'), n)
    size = np.where(rng.random(n) < 0.7, pd.Series(colour).map(dict(r='S', g='M', b='L')), rng.choice(list('SML'), n))
    width = pd.Series(colour).map(dict(r=0., g=1., b=2.)).to_numpy() + rng.normal(size=n)
    df = pd.DataFrame({'colour': colour, 'size': size, 'width': width, 'height': width**3 + rng.normal(size=n),
                       'depth': rng.normal(size=n), 'y': rng.normal(size=n)})
    df.loc[rng.random(n) < 0.2, 'depth'] = np.nan
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=['colour', 'size'],
                                     cont_names=['width', 'height', 'depth'], y_names='y',
                                     valid_idx=list(range(400, 600)), bs=64)
    return tabular_learner(dls, layers=[8]), df


def test_feature_correlation_mixed_types(mixed):
    learn, df = mixed
    corr = learn.feature_correlation()
    m, valid = corr.matrix, df.iloc[400:]
    assert list(m.index) == ['colour', 'size', 'width', 'height', 'depth']  # `depth_na` folded into `depth`
    assert np.allclose(m.to_numpy(), m.to_numpy().T) and np.allclose(np.diag(m), 1)
    assert m.loc['colour', 'size'] == pytest.approx(cramers_v(valid.colour, valid['size']), abs=1e-9)
    assert m.loc['colour', 'width'] == pytest.approx(correlation_ratio(valid.colour, valid.width), abs=1e-6)
    assert m.loc['width', 'height'] == pytest.approx(abs(stats.spearmanr(valid.width, valid.height)[0]), abs=1e-6)
    filled = valid.depth.fillna(df.depth.iloc[:400].median())  # FillMissing fills with the training median
    assert m.loc['depth', 'size'] == pytest.approx(max(correlation_ratio(valid['size'], filled),
                                                       cramers_v(valid['size'], valid.depth.isna())), abs=1e-6)
    assert m.loc['width', 'depth'] == pytest.approx(max(abs(stats.spearmanr(valid.width, filled)[0]),
                                                        correlation_ratio(valid.depth.isna(), valid.width)), abs=1e-6)
    # the same data without labels gives the same matrix
    no_labels = learn.feature_correlation(df=valid.drop(columns='y'))
    assert np.allclose(no_labels.matrix.to_numpy(), m.to_numpy(), atol=1e-9)


def test_plots(mixed):
    learn, _ = mixed
    corr = learn.feature_correlation(threshold=0.5)
    ax = corr.plot()
    assert [t.get_text() for t in ax.get_yticklabels()]  # labelled leaves
    assert any(np.allclose(l.get_xdata(), 0.5) for l in ax.get_lines())  # the cut at 1 - threshold
    ax = corr.plot(kind='heatmap')
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == sorted(corr.matrix.index)
    with pytest.raises(ValueError, match="unknown kind 'pie'; choose one of \\('dendrogram', 'heatmap'\\)"): corr.plot(kind='pie')


def near_copies_df(n=2000, seed=0):
    "`x1b` is `x1` plus a little noise; `y` is carried by the pair; `other` matters a little, `noise` not at all"
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    df = pd.DataFrame({'x1': x1, 'x1b': x1 + 0.02*rng.normal(size=n), 'other': rng.normal(size=n), 'noise': rng.normal(size=n)})
    df['y'] = 2*x1 + 0.5*df.other + 0.2*rng.normal(size=n)
    return df


@pytest.fixture(scope='module')
def near_copies():
    df = near_copies_df()
    return train_tabular(df, [], ['x1', 'x1b', 'other', 'noise'], 'y', metrics=rmse, epochs=6, layers=(32,)), df


def test_auto_group_gets_the_pairs_full_importance(near_copies):
    learn, _ = near_copies
    plain = by_feature(learn.permutation_importance(metric='loss', seed=0, show_progress=False))
    auto_result = learn.permutation_importance(metric='loss', groups='auto', seed=0, show_progress=False)
    auto = by_feature(auto_result)
    assert list(auto.index) == ['x1 +1', 'other', 'noise']
    assert auto.loc['x1 +1', 'type'] == 'group' and auto.loc['x1 +1', 'columns'] == ['x1', 'x1b']
    pair = auto.loc['x1 +1', 'importance']
    # each copy alone looks small next to the pair; their sum falls short of the pair's importance too
    assert plain.loc['x1', 'importance'] < 0.5*pair and plain.loc['x1b', 'importance'] < 0.5*pair
    assert plain.loc['x1', 'ci_high'] + plain.loc['x1b', 'ci_high'] < auto.loc['x1 +1', 'ci_low']
    # the automatic group is the explicit one: same unit, same permutations, the same numbers
    explicit = learn.permutation_importance(metric='loss', groups={'x1 +1': ['x1', 'x1b']}, seed=0, show_progress=False)
    assert np.array_equal(explicit.scores, auto_result.scores)
    # shuffling the pair together is what a model that never saw them would lose: most of the error
    assert pair > 10*auto.loc['other', 'importance'] > 0


def test_dendrogram_puts_the_pair_together(near_copies):
    learn, _ = near_copies
    corr = learn.feature_correlation()
    names = list(corr.matrix.index)
    assert names == ['x1', 'x1b', 'other', 'noise']
    first = sorted(corr.linkage[0, :2].astype(int))
    assert [names[i] for i in first] == ['x1', 'x1b']
    assert corr.linkage[0, 2] == pytest.approx(1 - corr.matrix.loc['x1', 'x1b']) and corr.linkage[0, 2] < 0.01
    labels = hierarchy.fcluster(corr.linkage, 1 - corr.threshold, criterion='distance')
    assert labels[0] == labels[1] and len(set(labels)) == 3
    assert corr.groups == {'x1 +1': ['x1', 'x1b']}
    # the strictest threshold joins nothing but exact copies; a loose one only features all associated at it
    assert len(learn.feature_correlation(threshold=1.0).groups) == 0
    for t in (0.001, 0.02, 0.1):
        loose = learn.feature_correlation(threshold=t)
        assert all(loose.matrix.loc[g, g].to_numpy().min() >= t for g in loose.groups.values())


def test_auto_combines_with_explicit_groups(near_copies):
    learn, _ = near_copies
    kw = dict(n_repeats=1, seed=0, show_progress=False)
    separate = by_feature(learn.permutation_importance(groups=['auto', {'rest': ['other', 'noise']}], **kw))
    assert sorted(separate.index) == ['rest', 'x1 +1']
    assert separate.loc['rest', 'columns'] == ['other', 'noise']
    # an explicit group that holds one copy takes the other one along, and says so in its name
    absorbed = by_feature(learn.permutation_importance(groups=['auto', ['x1', 'noise']], **kw))
    assert sorted(absorbed.index) == ['other', 'x1+noise +1']
    assert sorted(absorbed.loc['x1+noise +1', 'columns']) == ['noise', 'x1', 'x1b']


def dependent_df(n=2000, seed=0):
    "`x2` depends on `x1`, `y` on `x1` only"
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    df = pd.DataFrame({'x1': x1, 'x2': x1 + 0.3*rng.normal(size=n), 'noise': rng.normal(size=n)})
    df['y'] = 2*x1 + 0.2*rng.normal(size=n)
    return df


@pytest.fixture(scope='module')
def dependent():
    df = dependent_df()
    return train_tabular(df, [], ['x1', 'x2', 'noise'], 'y', metrics=rmse, epochs=6, layers=(32,)), df


def test_conditional_importance_of_a_dependent_feature(dependent):
    learn, _ = dependent
    plain = by_feature(learn.permutation_importance(seed=0, show_progress=False))
    cond_result = learn.permutation_importance(conditional=True, seed=0, show_progress=False)
    cond = by_feature(cond_result)
    # the model leans on x2 a little, so shuffling it plainly hurts; within strata of x1 it barely does
    assert plain.loc['x2', 'ci_low'] > 0.05*plain.loc['x1', 'importance']
    assert cond.loc['x2', 'importance'] < 0.2*plain.loc['x2', 'importance']
    assert abs(cond.loc['x2', 'importance']) < 0.03*plain.loc['x1', 'importance']
    # what is left comes from x1 varying inside its quintiles: finer bins take it towards zero
    fine = by_feature(learn.permutation_importance(conditional=True, n_bins=20, seed=0, show_progress=False))
    assert fine.loc['x2', 'importance'] < 0.5*cond.loc['x2', 'importance']
    assert fine.loc['x2', 'importance'] < 0.05*plain.loc['x2', 'importance']
    # x1 carries what y needs beyond x2, so it keeps a large conditional importance
    assert cond.loc['x1', 'ci_low'] > 0.2*plain.loc['x1', 'importance']
    assert cond.loc['x2', 'conditioned_on'] == ['x1'] and cond.loc['x1', 'conditioned_on'] == ['x2']
    assert cond.loc['x2', 'note'] == ''
    # noise has no associated feature: it is shuffled plainly, and the result says so
    assert cond.loc['noise', 'conditioned_on'] == [] and 'plain permutation' in cond.loc['noise', 'note']


def test_conditional_without_labels(dependent):
    learn, df = dependent
    moved = by_feature(learn.permutation_importance(df=df.drop(columns='y').iloc[-400:], by='prediction',
                                                    conditional=True, seed=0, show_progress=False))
    plain = by_feature(learn.permutation_importance(df=df.drop(columns='y').iloc[-400:], by='prediction',
                                                    seed=0, show_progress=False))
    assert moved.loc['x2', 'importance'] < 0.3*plain.loc['x2', 'importance']
    assert moved.loc['x2', 'conditioned_on'] == ['x1']


def test_stratified_permutation():
    rng = np.random.default_rng(0)
    strata_ids = torch.as_tensor(rng.integers(0, 7, 1000))
    strata_ids[17] = 99  # a stratum of one row
    perm = stratified_permutation(strata_ids, torch.Generator().manual_seed(0))
    assert torch.equal(perm.sort().values, torch.arange(1000))
    assert torch.equal(strata_ids[perm], strata_ids)
    assert perm[17] == 17
    assert (perm != torch.arange(1000)).float().mean() > 0.8  # rows do move within their strata
    again = stratified_permutation(strata_ids, torch.Generator().manual_seed(0))
    other = stratified_permutation(strata_ids, torch.Generator().manual_seed(1))
    assert torch.equal(perm, again) and not torch.equal(perm, other)
    # within a stratum of three rows, each of the 6 orders is equally likely
    gen, three = torch.Generator().manual_seed(0), tensor([0, 1, 1, 0, 1])
    counts = pd.Series([tuple(stratified_permutation(three, gen)[[1, 2, 4]].tolist()) for _ in range(3000)]).value_counts()
    assert len(counts) == 6 and stats.chisquare(counts.to_numpy()).pvalue > 1e-3


def test_strata_from_bins_and_categories(mixed):
    learn, _ = mixed
    eng = Engine(learn)
    ids = strata(eng.data, [eng.features['colour'], eng.features['width']], n_bins=4)
    cells = pd.crosstab(ids.numpy(), [eng.data.cats[:, 0].numpy(), quantile_bins(eng.data.conts[:, 0], 4).numpy()])
    assert ((cells > 0).sum(1) == 1).all()  # each stratum is exactly one cell of colour x width quarter
    assert len(ids.unique()) == (cells > 0).to_numpy().sum() <= 3*4
    # depth carries its _na companion: its strata split by missingness as well as by bins
    depth = eng.features['depth']
    by_depth = strata(eng.data, [depth], n_bins=2)
    na = eng.data.cats[:, depth.cat_idx[0]]
    assert pd.crosstab(by_depth.numpy(), na.numpy()).gt(0).sum(1).eq(1).all()


def snapshot(learn):
    return dict(metrics=learn.metrics.attrgot('name'), training=learn.model.training, cbs=[type(c) for c in learn.cbs],
                values=len(learn.recorder.values), dls=learn.dls,
                weights={k: v.clone() for k, v in learn.model.state_dict().items()})


def same(a, b):
    assert a['metrics'] == b['metrics'] and a['training'] == b['training'] and a['cbs'] == b['cbs']
    assert a['values'] == b['values'] and a['dls'] is b['dls']
    assert all(torch.equal(a['weights'][k], b['weights'][k]) for k in a['weights'])


def test_bad_input_and_learner_unchanged(near_copies):
    learn, df = near_copies
    before, df_before = snapshot(learn), df.copy()
    for t in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"): learn.feature_correlation(threshold=t)
        with pytest.raises(ValueError, match=r"\(0, 1\]"): learn.permutation_importance(groups='auto', threshold=t)
    with pytest.raises(ValueError, match="unknown `groups` 'everything'"): learn.permutation_importance(groups='everything')
    with pytest.raises(ValueError, match="unknown feature 'zzz'"): learn.permutation_importance(groups=['auto', ['x1', 'zzz']])
    with pytest.raises(ValueError, match="min_association"): learn.permutation_importance(conditional=True, min_association=0)
    with pytest.raises(ValueError, match="n_bins"): learn.permutation_importance(conditional=True, n_bins=1)
    with pytest.raises(ValueError, match="max_conditioning"): learn.permutation_importance(conditional=True, max_conditioning=0)
    with pytest.raises(ValueError, match="missing column"): learn.feature_correlation(df=df.drop(columns='x1b'))
    learn.feature_correlation(df=df)
    learn.permutation_importance(groups='auto', conditional=True, n_repeats=1, seed=0, show_progress=False)
    same(before, snapshot(learn))
    pd.testing.assert_frame_equal(df, df_before)


def test_auto_needs_two_features():
    df = near_copies_df(300)
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=['x1'], y_names='y', valid_idx=list(range(200, 300)))
    learn = tabular_learner(dls, layers=[8], metrics=rmse)
    with pytest.raises(ValueError, match="at least two features"): learn.permutation_importance(groups='auto')
    with pytest.raises(ValueError, match="only one feature"): learn.feature_correlation().plot()
    assert learn.feature_correlation().groups == {}
    # a lone feature conditioned on nothing falls back to plain permutation, and says so
    cond = by_feature(learn.permutation_importance(conditional=True, n_repeats=1, seed=0, show_progress=False))
    assert 'plain permutation' in cond.loc['x1', 'note']


@pytest.fixture(scope='module')
def breast_cancer():
    "A classifier on scikit-learn's breast-cancer data: 30 measurements, many of them near copies of others"
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer(as_frame=True)
    df = data.frame.sample(frac=1, random_state=0).reset_index(drop=True)
    df['target'] = df.target.map({0: 'malignant', 1: 'benign'})
    learn = train_tabular(df, [], list(data.feature_names), 'target', y_block=CategoryBlock(), epochs=1, layers=(16,))
    return learn, df


def test_breast_cancer_auto_groups_are_readable(breast_cancer):
    """Complete linkage: every pair inside an automatic group is associated at `threshold` or more (single linkage put
    21 of the 30 features in one group, with a pair at 0.001); each group is named after its most central member"""
    learn, df = breast_cancer
    for threshold in (0.7, 0.9):
        corr = learn.feature_correlation(threshold=threshold)
        m = corr.matrix
        groups = corr.groups
        assert groups and max(map(len, groups.values())) <= 8
        for name, members in groups.items():
            assert m.loc[members, members].to_numpy().min() >= threshold
            central = m.loc[members, members].mean(1)
            assert name == f'{central.idxmax()} +{len(members)-1}' and central[name.rsplit(' +', 1)[0]] == central.max()
            assert type(name) is str and all(type(n) is str for n in members)
    # the names stay short however large the group, and the table keeps every member
    res = learn.permutation_importance(groups='auto', n_repeats=1, seed=0, show_progress=False).results.set_index('feature')
    auto = learn.feature_correlation().groups
    for name, members in auto.items():
        assert res.loc[name, 'type'] == 'group' and res.loc[name, 'columns'] == members
    assert res.index.map(len).max() <= max(map(len, df.columns)) + 4
