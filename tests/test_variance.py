"VIANN callback: Welford against numpy, ranking on known truth, the embedding layout, and safety in fastai's loop"
import random
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from fastai_featimp.variance import InputMap, effective_weights


def two_matter(n=1200, seed=0):
    "Six continuous inputs and a 30-level categorical; only `a` and `b` drive the target"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: rng.normal(size=n) for k in 'abcdef'})
    df['tag'] = rng.choice([f't{i}' for i in range(30)], n)
    df['y'] = 2*df.a - 1.5*df.b + 0.1*rng.normal(size=n)
    df.loc[rng.random(n) < 0.1, 'd'] = np.nan
    return df


def make_dls(df, bs=64):
    return TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=['tag'],
                                      cont_names=list('abcdef'), y_names='y', valid_idx=list(range(len(df)-200, len(df))), bs=bs)


def fitted(dls, cbs=None, epochs=6, **kw):
    "A tiny tabular learner trained reproducibly"
    set_seed(0, reproducible=True)
    learn = tabular_learner(dls, layers=[32], cbs=cbs, **kw)
    set_seed(0, reproducible=True)
    for dl in dls.loaders: dl.rng = random.Random(0)  # fastai 2.7 shuffles with the loader's own generator, which set_seed leaves
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn


class Snapshots(Callback):
    "Keep a copy of the tracked weights at each of `VarianceImportance`'s samples (runs right after it)"
    order = 91
    def before_train(self):
        if self.train_iter == 0: self.snaps = [self.variance_importance.inputs.weights().clone()]
    def after_batch(self):
        if self.training and self.variance_importance.every == 'batch': self.snaps.append(self.variance_importance.inputs.weights().clone())
    def after_train(self):
        if self.variance_importance.every == 'epoch': self.snaps.append(self.variance_importance.inputs.weights().clone())


@pytest.fixture(scope='module')
def dls(): return make_dls(two_matter())


@pytest.fixture(scope='module')
def trained(dls): return fitted(dls, cbs=VarianceImportance())


@pytest.mark.parametrize('every,view', [('epoch', 'onehot'), ('batch', 'layer')])
def test_welford_matches_numpy(dls, every, view):
    learn = fitted(dls, cbs=[VarianceImportance(every=every, view=view), Snapshots()], epochs=3)
    vi,snaps = learn.variance_importance,torch.stack(learn.snapshots.snaps).double().numpy()
    expected_n = 1 + (3 if every == 'epoch' else 3*len(dls.train))
    assert vi.stats.n == len(snaps) == expected_n == vi.n_samples
    np.testing.assert_allclose(vi.stats.mean.numpy(), snaps.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vi.stats.var.numpy(), snaps.var(0, ddof=1), rtol=1e-3, atol=1e-9)
    # the column score is the paper's sum over neurons (dim 0 of an out × in weight) of variance × |final weight|
    final = np.abs(vi.inputs.weights().double().numpy())
    np.testing.assert_allclose(vi.column_scores.values, (snaps.var(0, ddof=1)*final).sum(0), rtol=1e-3)
    assert len(vi.column_scores) == vi.inputs.layer.in_features if view == 'layer' else snaps.shape[2]


def test_two_features_that_matter_rank_first(trained):
    cb = trained.variance_importance
    result = cb.result()  # the callback hands out a finished result, and is not one
    assert isinstance(result, VarianceResult) and not isinstance(cb, ImportanceResult) and result is cb.result()
    res = result.results
    pd.testing.assert_frame_equal(cb.results, res)
    assert set(res.feature[:2]) == {'a', 'b'}
    assert res.importance.iloc[0] == 1 and res.importance.between(0, 1).all()
    assert (res.score > 0).all()
    assert res.set_index('feature').loc['d', 'columns'] == ['d', 'd_na']
    assert list(res.columns[:4]) == ['feature', 'importance', 'score', 'type'] and 'std' not in res  # one score each: no spread


def test_plain_learner_two_inputs_first():
    "A plain `Learner` over tensors whose model starts with `nn.Linear`: one score per input, named x0.."
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(1000, 6)), dtype=torch.float32)
    y = (3*x[:, 4] - 2*x[:, 1] + 0.1*torch.tensor(rng.normal(size=1000), dtype=torch.float32))[:, None]
    dls = DataLoaders.from_dsets(list(zip(x[:800], y[:800])), list(zip(x[800:], y[800:])), bs=50)
    set_seed(0, reproducible=True)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 1))
    learn = Learner(dls, model, loss_func=MSELossFlat(), cbs=VarianceImportance())
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(5, 1e-2)
    res = learn.variance_importance.results
    assert sorted(res.feature) == [f'x{i}' for i in range(6)]
    assert set(res.feature[:2]) == {'x4', 'x1'}
    assert (res.type == 'continuous').all()


@pytest.mark.parametrize('view', ['layer', 'onehot'])
def test_every_input_column_belongs_to_one_feature(view):
    "Several categoricals with different widths and two `_na` companions: the spans tile the columns exactly once"
    rng = np.random.default_rng(2)
    n = 300
    df = pd.DataFrame({'u': rng.normal(size=n), 'v': rng.normal(size=n), 'w': rng.normal(size=n),
                       'colour': rng.choice(list('xyz'), n), 'city': rng.choice([f'k{i}' for i in range(60)], n)})
    df.loc[::7, 'u'] = np.nan
    df.loc[::11, 'w'] = np.nan
    df['y'] = rng.normal(size=n)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, FillMissing, Normalize], cat_names=['colour', 'city'],
                                     cont_names=['u', 'v', 'w'], y_names='y', bs=64)
    learn = tabular_learner(dls, layers=[16])
    imap = InputMap(learn, view)
    n_cols = imap.layer.in_features if view == 'layer' else sum(e.num_embeddings for e in learn.model.embeds) + 3
    cols = [c for spans in imap.spans.values() for span in spans for c in span]
    assert sorted(cols) == list(range(n_cols))
    assert len(imap.labels) == n_cols == imap.weights().shape[1]
    assert list(imap.spans) == ['colour', 'city', 'u', 'v', 'w']
    # a companion's columns go to its feature, and a categorical owns all of its embedding (or levels)
    cats = list(dls.train_ds.cat_names)
    dims = {n: (e.num_embeddings if view == 'onehot' else e.embedding_dim) for n,e in zip(cats, learn.model.embeds)}
    assert [len(s) for s in imap.spans['u']] == [dims['u_na'], 1]
    assert [len(s) for s in imap.spans['city']] == [dims['city']]
    assert imap.spans['v'] == [[n_cols - 2]]


def test_effective_weights_are_the_composed_map(dls, trained):
    "`view='onehot'`: each category level's column equals first layer × that level's embedding row"
    m = trained.model
    w = effective_weights(m, m.layers[0][0])
    e = m.embeds[0].weight.detach()
    lin = m.layers[0][0].weight.detach()
    np.testing.assert_allclose(w[:, 5].numpy(), (lin[:, :e.shape[1]] @ e[5]).numpy(), rtol=1e-5, atol=1e-7)
    bn = m.bn_cont
    scale = (bn.weight*torch.sqrt(bn.running_var/(bn.running_var + bn.eps))).detach()
    np.testing.assert_allclose(w[:, -1].numpy(), (lin[:, -1]*scale[-1]).numpy(), rtol=1e-5)


def test_training_unchanged(dls, trained):
    plain = fitted(dls)
    assert plain.recorder.values == trained.recorder.values
    for p,q in zip(plain.model.parameters(), trained.model.parameters()): assert torch.equal(p, q)


def test_survives_lr_find_get_preds_export(dls, tmp_path):
    vi = VarianceImportance()
    set_seed(0, reproducible=True)
    learn = tabular_learner(dls, layers=[32], cbs=vi, path=tmp_path)
    with learn.no_bar(), learn.no_logging():
        learn.lr_find(show_plot=False, num_it=20)
        assert vi.stats is None  # lr_find neither starts nor feeds the statistics
        learn.fit_one_cycle(3, 1e-2)
        before = vi.results.copy()
        learn.lr_find(show_plot=False, num_it=20)
        preds,_ = learn.get_preds()
        learn.validate()
    assert vi.stats.n == 4 and len(preds) == 200
    pd.testing.assert_frame_equal(vi.results, before)
    learn.export('vi.pkl')
    loaded = load_learner(tmp_path/'vi.pkl')
    pd.testing.assert_frame_equal(loaded.variance_importance.results, before)
    with loaded.no_bar(): assert len(loaded.get_preds(dl=loaded.dls.test_dl(two_matter().iloc[:50]))[0]) == 50
    vi.plot()


def test_keep_and_restart(dls):
    vi = VarianceImportance(keep=True)
    learn = fitted(dls, cbs=vi, epochs=2)
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-3)
    assert vi.stats.n == 1 + 2 + 3
    vi.keep = False
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    assert vi.stats.n == 1 + 2


def test_callback_for_one_fit(dls):
    "Passed to `fit` only: the learner forgets it after the fit, the caller's reference keeps the result"
    set_seed(0, reproducible=True)
    learn = tabular_learner(dls, layers=[32])
    vi = VarianceImportance(every='batch')
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2, cbs=vi)
    assert not hasattr(learn, 'variance_importance')
    assert vi.stats.n == 1 + len(dls.train) and len(vi.results) == 7


class InterruptAt(Callback):
    "Raise `KeyboardInterrupt` at training iteration `at`, as Ctrl-C would"
    def __init__(self, at): self.at = at
    def after_batch(self):
        if self.training and self.train_iter == self.at: raise KeyboardInterrupt()


def test_interrupted_fit_keeps_its_samples_and_the_next_fit_restarts(dls):
    vi = VarianceImportance(every='batch')
    set_seed(0, reproducible=True)
    learn = tabular_learner(dls, layers=[32], cbs=vi)
    with learn.no_bar(), learn.no_logging(), pytest.raises(KeyboardInterrupt): learn.fit(3, 1e-2, cbs=InterruptAt(5))
    assert vi.stats.n == 1 + 4  # the initial weights and four batches: the fifth raised before its sample
    assert len(vi.results) == 7 and vi.results.importance.max() == 1
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert vi.stats.n == 1 + len(dls.train)


class StopAtFirstBatch(Callback):
    def after_batch(self): raise CancelFitException()


def test_fewer_than_two_samples(dls):
    vi = VarianceImportance()
    learn = fitted(dls, cbs=[vi, StopAtFirstBatch()], epochs=2)
    assert vi.stats.n == 1
    with pytest.raises(ValueError, match='at least two samples'): vi.results
    with pytest.raises(ValueError, match='at least two samples'): vi.compute()


def test_bad_models_and_options():
    with pytest.raises(TypeError, match='first layer with weights is `nn.Linear`'):
        first_linear(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Linear(2, 1)))
    with pytest.raises(ValueError, match="choose 'epoch' or 'batch'"): VarianceImportance(every='iter')
    with pytest.raises(ValueError, match="'mean', 'sum'"): VarianceImportance(reduce='median')
