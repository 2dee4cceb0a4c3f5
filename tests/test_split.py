"The first-layer split: every method gives the whole model's answers with it, on every TabularModel layout; the whole model runs where it must"
import gc, weakref
from contextlib import contextmanager
from copy import deepcopy
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *


@contextmanager
def whole_model():
    "Refuse the split, so that every method runs the whole model"
    LinearInput.enabled = False
    try: yield
    finally: LinearInput.enabled = True


def splits(learn):
    "Whether the engine evaluates `learn` in its first layer's space"
    eng = Engine(learn, with_labels=False)
    with evaluating(learn): return eng.first_layer(learn)[0] is not None


def close(fast, whole, rtol=1e-5, scale=0):
    "Equal to `rtol` relative to the largest magnitude, or to `scale` if larger (values near zero have no relative precision of their own)"
    fast, whole = np.asarray(fast, dtype=float), np.asarray(whole, dtype=float)
    np.testing.assert_allclose(fast, whole, rtol=rtol, atol=rtol*max(np.nanmax(np.abs(whole)), scale))


def mean_loss(learn):
    "The learner's mean loss on its validation rows"
    with learn.no_bar(): return float(learn.get_preds(with_loss=True)[2].mean())


def frame(n=400, seed=0):
    "Three continuous features (`x2` with missing values), two categoricals, a regression, a binary and a 3-class target"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'x3': rng.normal(size=n),
                       'c1': rng.choice(list('abcd'), n), 'c2': rng.choice(list('uvw'), n)})
    df['y'] = 2*df.x1 + df.x2 + df.c1.map(dict(a=-1., b=0., c=1., d=2.)) + 0.1*rng.normal(size=n)
    df['z'] = df.x3 - df.x1 + 0.1*rng.normal(size=n)
    df['k'] = np.where(df.y > 1, 'high', np.where(df.y < -1, 'low', 'mid'))
    df.loc[rng.random(n) < 0.15, 'x2'] = np.nan
    return df


def fitted(cat_names, cont_names, y_names, y_block=None, metrics=None, epochs=2, **config):
    "A small `tabular_learner` on `frame`, trained briefly with `tabular_config(**config)`"
    df = frame()
    set_seed(0, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=cat_names,
                                     cont_names=cont_names, y_names=y_names, y_block=y_block, bs=64,
                                     valid_idx=list(range(300, 400)))
    learn = tabular_learner(dls, layers=[32, 16], metrics=metrics, config=tabular_config(**config))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn


layouts = {
    'categoricals only': lambda: fitted(['c1', 'c2'], [], 'y', metrics=rmse),
    'continuous only, y_range, no bn_cont': lambda: fitted([], ['x1', 'x3'], 'y', metrics=rmse, y_range=(-5, 5), bn_cont=False),
    'na companions, lin_first=False, dropout': lambda: fitted(['c1', 'c2'], ['x1', 'x2', 'x3'], 'y', metrics=[rmse, mae],
                                                             lin_first=False, ps=[0.2, 0.1], embed_p=0.1),
    'multi-class': lambda: fitted(['c1', 'c2'], ['x1', 'x2', 'x3'], 'k', y_block=CategoryBlock(), metrics=accuracy),
    'multi-target': lambda: fitted(['c1'], ['x1', 'x2', 'x3'], ['y', 'z'], y_block=RegressionBlock(n_out=2)),
}


@pytest.fixture(scope='module', params=list(layouts))
def layout(request): return layouts[request.param]()


def both(f):
    "`f()` through the split, then with the whole model"
    fast = f()
    with whole_model(): whole = f()
    return fast, whole


def test_permutation_split_equals_whole(layout):
    learn = layout
    assert splits(learn)
    with whole_model(): assert not splits(learn)
    feats = list(Engine(learn).features)
    q = dict(n_repeats=2, seed=1, show_progress=False)
    modes = [dict(metric='all'), dict(relative=True), dict(max_rows=150), dict(conditional=True, min_association=0.05),
             dict(groups=[feats[:2]]), dict(groups='auto', threshold=0.05)]
    for mode in modes:
        fast, whole = both(lambda: learn.permutation_importance(**q, **mode))
        assert fast.results.feature.tolist() == whole.results.feature.tolist(), mode
        close(fast.scores, whole.scores)
    weights = np.linspace(0, 2, 100)  # the validation set's 100 rows, weighted
    fast, whole = both(lambda: learn.permutation_importance(sample_weight=weights, **q))
    close(fast.scores, whole.scores)
    fast, whole = both(lambda: learn.permutation_importance(by='prediction', max_rows=200, **q))
    close(fast.scores, whole.scores)
    pd.testing.assert_index_equal(fast.deviations.columns, whole.deviations.columns)
    close(fast.deviations.to_numpy(), whole.deviations.to_numpy())


def test_dependence_split_equals_whole(layout):
    learn = layout
    feats = Engine(learn).features
    first = next(iter(feats))
    fast, whole = both(lambda: learn.partial_dependence(first, ice=20, n_points=6, seed=0, show_progress=False))
    pd.testing.assert_frame_equal(fast.results, whole.results, rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(fast.ice, whole.ice, rtol=1e-5, atol=1e-6)
    if len(feats) > 1:
        pair = list(feats)[:2]
        fast, whole = both(lambda: learn.partial_dependence(pair, n_points=4, show_progress=False))
        pd.testing.assert_frame_equal(fast.results, whole.results, rtol=1e-5, atol=1e-6)
    conts = [n for n, f in feats.items() if f.kind == 'continuous']
    for feature in [first] + ([conts[:2]] if len(conts) > 1 else []):  # accumulated local effects, one feature and a pair
        fast, whole = both(lambda: learn.accumulated_local_effects(feature, bins=5, show_progress=False))
        pd.testing.assert_frame_equal(fast.results, whole.results, rtol=1e-5, atol=1e-6)
    cat = next((n for n, f in feats.items() if f.kind == 'categorical'), None)
    if cat is not None:
        for by in ('metric', 'prediction'):
            fast, whole = both(lambda: learn.value_importance(cat, by=by, show_progress=False))
            column = 'score' if by == 'metric' else 'effect'  # an effect by metric is a difference of two scores: equal relative to them
            close(fast.results[column], whole.results[column])


def test_shapley_and_sage_split_equal_whole(layout):
    learn = layout
    fast, whole = both(lambda: learn.shap_values(n_background=20, seed=0, show_progress=False))
    close(fast.all_values, whole.all_values)
    fast, whole = both(lambda: learn.shap_values(n_background=20, max_evals=30, seed=0, show_progress=False))
    close(fast.all_values, whole.all_values)
    fast, whole = both(lambda: learn.sage_importance(n_background=20, n_permutations=8, seed=0, show_progress=False))
    close(fast.scores, whole.scores, scale=mean_loss(learn))  # differences of losses: their float32 noise is relative to the loss
    fast, whole = both(lambda: learn.shap_values(df=frame().iloc[300:310], n_background=20, interactions=True, seed=0, show_progress=False))
    close(fast.all_interactions, whole.all_interactions)
    m = len(fast.names)
    if m > 2:  # sampled below 2**m, along the walks and the detours off them
        fast, whole = both(lambda: learn.shap_values(df=frame().iloc[300:310], n_background=20, interactions=True, max_evals=2**m - 1, seed=0, show_progress=False))
        assert not fast.exact
        close(fast.all_interactions, whole.all_interactions)
        close(fast.all_interaction_std, whole.all_interaction_std)


def test_interaction_strength_split_equals_whole(layout):
    learn = layout
    fast, whole = both(lambda: learn.interaction_strength(n_rows=60, n_background=20, seed=0, show_progress=False))
    pd.testing.assert_index_equal(fast.matrix.index, whole.matrix.index)
    close(fast.matrix.to_numpy(dtype=float), whole.matrix.to_numpy(dtype=float), rtol=1e-4)


class Wrapped(Module):
    "A custom model: a `TabularModel` inside a module of its own"
    def __init__(self, inner): self.inner = inner
    def forward(self, cats, conts): return self.inner(cats, conts)


class Doubled(Callback):
    "A callback acting on batches: doubles the predictions"
    def after_pred(self): self.learn.pred = self.learn.pred*2


@pytest.fixture(scope='module')
def regression(): return fitted(['c1', 'c2'], ['x1', 'x2', 'x3'], 'y', metrics=rmse)


def test_custom_model_runs_whole(regression):
    learn = regression
    custom = TabularLearner(learn.dls, Wrapped(learn.model), loss_func=learn.loss_func, metrics=rmse)
    assert splits(learn) and not splits(custom)
    q = dict(n_repeats=2, seed=0, show_progress=False)
    close(custom.permutation_importance(**q).scores, learn.permutation_importance(**q).scores)
    close(custom.shap_values(n_background=20, seed=0, show_progress=False).all_values,
          learn.shap_values(n_background=20, seed=0, show_progress=False).all_values)


def test_batch_callback_runs_whole(regression):
    learn = regression
    q = dict(n_repeats=2, seed=0, show_progress=False, by='prediction')
    plain = learn.permutation_importance(**q)
    with learn.added_cbs(Doubled()):
        assert not splits(learn)
        doubled = learn.permutation_importance(**q)
        shap = learn.shap_values(n_background=20, seed=0, show_progress=False)
    close(doubled.deviations.to_numpy(), 2*plain.deviations.to_numpy())  # the callback took part in every forward
    close(shap.all_values, 2*learn.shap_values(n_background=20, seed=0, show_progress=False).all_values)


def test_coalition_rows_cut_across_batches(regression):
    "Coalition rows that do not fit a batch (`bs=7`) are cut across batches and give the values of whole batches, split or whole model"
    learn = regression
    for q in (dict(), dict(max_evals=30, interactions=True)):
        values = lambda bs: learn.shap_values(df=frame().iloc[300:320], n_background=20, seed=0, show_progress=False, bs=bs, **q).all_values
        close(values(7), values(None))
        with whole_model(): close(values(7), values(None))


def largest_allocation(f):
    "The largest block of CPU memory torch allocates while `f` runs, in bytes, and `f`'s result"
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof: out = f()
    return max(e.cpu_memory_usage for e in prof.events()), out


def test_memory_bounded_on_1000_features():
    "Permutation importance on 1,000 continuous features: no tensor of rows x features x width is ever built"
    n, m, width = 400, 1000, 200
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n, m)).astype(np.float32), columns=[f'f{i}' for i in range(m)])
    df['y'] = df.f0 + 0.1*rng.normal(size=n)
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=[f'f{i}' for i in range(m)], y_names='y', bs=64,
                                     valid_idx=list(range(100, n)))
    learn = tabular_learner(dls, layers=[width, 100])
    assert splits(learn)
    peak, res = largest_allocation(lambda: learn.permutation_importance(n_repeats=1, metric='loss', seed=0, show_progress=False))
    assert len(res.results) == m
    encoded = 300*m*4  # the validation rows' continuous values
    assert peak < 300*m*width*4/20  # a rows x features x width tensor would be 240 MB; a batch is a few MB
    assert peak <= 2*max(encoded, Engine(learn).bs*m*4)


def test_deviations_memory_independent_of_repeats(regression):
    "`by='prediction'` sums per-row deviations as the repeats come: no table per repeat is kept"
    import tracemalloc
    learn, df = regression, frame(4000, seed=3)
    def peak(n_repeats):
        tracemalloc.start()
        try:
            res = learn.permutation_importance(df=df, by='prediction', n_repeats=n_repeats, seed=0, show_progress=False)
            return tracemalloc.get_traced_memory()[1], res
        finally: tracemalloc.stop()
    (one, a), (six, b) = peak(1), peak(6)
    table = a.deviations.to_numpy().nbytes  # rows x units, float32: what one repeat's answers would hold
    assert b.deviations.shape == a.deviations.shape
    assert six - one < table  # keeping every repeat's answers would add at least 5 such tables


def test_deviations_handed_on_as_they_come(regression):
    "With `into`, a `DeviationScorer` passes each segment's per-row deviations on and answers only their sum and weight: the same deviations and means as per-row answers"
    learn = regression
    eng = Engine(learn, frame(500, seed=4), bs=64, with_labels=False)  # segments cut across batches
    gen = torch.Generator().manual_seed(0)
    perturbations = [Permute(u, eng.permutation(gen)) for u in eng.features.values()]
    per_row = eng.set_baseline(DeviationScorer(learn))
    class Into:
        rows = {}
        def add(self, key, positions, values): self.rows.setdefault(key, np.full(eng.data.n, np.nan, np.float32))[positions] = values
    into = Into()
    summed = eng.set_baseline(DeviationScorer(learn, into=into))
    for k,(a,b) in enumerate(zip(eng.evaluate(perturbations, per_row), eng.evaluate(perturbations, summed))):
        np.testing.assert_array_equal(into.rows[k], a)  # every row handed on once, under its perturbation's number
        assert not hasattr(b, '__len__') and b.weight == eng.data.n
        assert summed.summary(b)[0] == pytest.approx(per_row.summary(a)[0], rel=1e-6)


class Shifted(Perturbation):
    "A perturbation that names no feature, so may rewrite any column: here it adds one to continuous column 0"
    def __call__(self, data, positions, cats, conts): conts[:, 0] += 1


def test_perturbation_without_feature_recomputes_whole_rows(regression):
    learn = regression
    scorer = MetricScorer(learn, 'loss')
    perturbations = [Shifted(), Identity(), Permute(Engine(learn).features['c1'], torch.arange(100).flip(0))]
    fast = np.stack(Engine(learn, bs=64).evaluate(perturbations, scorer))
    with whole_model(): whole = np.stack(Engine(learn, bs=64).evaluate(perturbations, scorer))
    close(fast, whole)
    assert fast[0, 0] != fast[1, 0]


def test_first_layer_outputs_kept_only_where_they_pay():
    "A first layer on a few continuous columns runs on each perturbed row; the rows' first-layer outputs are kept when no larger than the encoded data (wide data), else computed per block once for the perturbations read together"
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(200, 300)).astype(np.float32), columns=[f'f{i}' for i in range(300)])
    wide['y'] = wide.f0 + 0.1*rng.normal(size=200)
    dls = TabularDataLoaders.from_df(wide, procs=[Normalize], cont_names=[f'f{i}' for i in range(300)], y_names='y', bs=64, valid_idx=list(range(100, 200)))
    cases = ((layouts['continuous only, y_range, no bn_cont'](), 'direct'), (layouts['categoricals only'](), 'blocks'),
             (tabular_learner(dls, layers=[16, 8]), 'kept'))
    for learn, how in cases:
        eng = Engine(learn, with_labels=False)
        with evaluating(learn): split, hidden = eng.first_layer(learn)
        window = Evaluator(eng.data, None, eng.bs, split, hidden).window
        assert (split.direct, hidden is not None, window > 1) == (how == 'direct', how == 'kept', how == 'blocks'), how
        if how == 'kept': assert hidden.numel() <= eng.data.conts.numel() + 2*eng.data.cats.numel()  # float32 outputs against float32 values and int64 codes


def test_perturbations_of_other_rows_answered_in_order(regression):
    "Read ahead, perturbations of different rows are evaluated by rows but answered in the order given, as the whole model answers them"
    learn = regression
    eng, scorer = Engine(learn), MetricScorer(learn, 'loss')
    feature, gen = eng.features['c1'], torch.Generator().manual_seed(0)
    rows = [None, torch.arange(0, 100, 2), None, torch.arange(1, 100, 3)]
    perturbations = lambda: [Permute(feature, eng.permutation(torch.Generator().manual_seed(i), r), r) for i, r in enumerate(rows*3)]
    fast = np.stack(eng.evaluate(perturbations(), scorer))
    with whole_model(): whole = np.stack(Engine(learn).evaluate(perturbations(), scorer))
    close(fast, whole)
    assert len(set(fast[:4, 0])) == 4  # each answer its own


def test_evaluating_enters_once():
    "An `evaluating` inside another of the same learner yields the same forward pass and restores nothing; the outer one restores all"
    learn = layouts['categoricals only']()
    learn.model.train()
    with evaluating(learn) as outer:
        with evaluating(learn) as inner: assert inner is outer
        assert not learn.model.training and '_featimp_forward' in learn.__dict__
    assert learn.model.training and '_featimp_forward' not in learn.__dict__


def test_split_checked_once_per_model_state(monkeypatch):
    "The split is built and checked once per state of the model: training, `load_state_dict`, a module put in place of another, a forward hook (on the model or on every module), a batch callback or another model check it again"
    learn = layouts['na companions, lin_first=False, dropout']()
    data = Engine(learn, with_labels=False).data
    built = []
    init = LinearInput.__init__
    monkeypatch.setattr(LinearInput, '__init__', lambda self, *a: (built.append(1), init(self, *a))[1])
    def split():
        with evaluating(learn): return LinearInput.of(learn, data.cats, data.conts)
    def outputs(s):
        with evaluating(learn): return s(s.hidden(data.cats, data.conts)).numpy()
    def model_outputs():
        with evaluating(learn): return learn.model(data.cats, data.conts).numpy()
    original = {k: v.clone() for k, v in learn.model.state_dict().items()}
    first = split()
    assert first is not None and split() is first and len(built) == 1  # the same state: neither built nor checked again
    assert len(first.tables) == 3 and all(t._base is first.table for t in first.tables)  # kept, it holds each table once
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    trained = split()
    assert trained is not first and len(built) == 2
    close(outputs(trained), model_outputs())
    assert np.abs(outputs(trained) - outputs(first)).max() > 1e-3  # the old split no longer gives the model's outputs
    learn.model.load_state_dict(original)
    loaded = split()
    assert loaded is not trained and len(built) == 3
    close(outputs(loaded), outputs(first))
    block = learn.model.layers[0]
    relu = [i for i, m in enumerate(block) if isinstance(m, nn.ReLU)][0]
    block[relu] = nn.Tanh()
    tanh = split()
    assert tanh is not loaded and len(built) == 4
    close(outputs(tanh), model_outputs())
    hook = learn.model.register_forward_hook(lambda m, i, o: o*2)
    assert split() is None and len(built) == 5  # the split would skip the hook: refused
    hook.remove()
    assert split() is not None and len(built) == 6
    hook = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o*2 if m is learn.model else None)
    try: assert split() is None and len(built) == 7  # a hook on every module: refused too
    finally: hook.remove()
    assert split() is not None and len(built) == 8
    with learn.added_cbs(Doubled()): assert split() is None  # refused before any cache is read
    assert split() is not None and len(built) == 8
    old = learn.model
    learn.model = deepcopy(old)
    assert split() is not None and len(built) == 9
    close(outputs(split()), model_outputs())
    gone = weakref.ref(old)
    del old
    gc.collect()
    assert gone() is None  # the cache does not keep a model alive
