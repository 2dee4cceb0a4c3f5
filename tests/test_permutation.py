"Permutation importance: ground truth, agreement with scikit-learn, metrics, reproducibility, safety, bad input"

import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai.test_utils import synth_learner
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance as sk_permutation_importance
from fastai_featimp.all import *
from conftest import classification_df, ground_truth_df, train_tabular
from copy import deepcopy


def by_feature(pi): return pi.results.set_index('feature')


def test_ground_truth_ranking(regression):
    learn, df = regression
    pi = learn.permutation_importance(n_repeats=5, seed=0, show_progress=False)
    res = by_feature(pi)
    assert pi.results.feature.tolist()[:4] == ['x1', 'grp', 'x3', 'x4']
    assert res.loc['x3', 'columns'] == ['x3', 'x3_na']
    assert 'x3_na' not in res.index
    strongest = pi.results.importance.max()
    for noise in ('noise1', 'noise2'):
        assert abs(res.loc[noise, 'importance']) < 0.02*strongest
        # the interval reaches zero, or misses it by a small fraction of the strongest feature
        assert res.loc[noise, 'ci_low'] < 0.01*strongest and res.loc[noise, 'ci_high'] > -0.01*strongest
    assert (res.loc[['x1', 'grp', 'x3', 'x4'], 'ci_low'] > 0).all()
    assert res.loc['grp', 'type'] == 'categorical' and res.loc['grp', 'emb_dim'] > 0
    assert res.loc['x1', 'type'] == 'continuous' and res.loc['x1', 'emb_dim'] == 0


def test_missing_values_matter_through_companion(regression):
    "Shuffling `x3` moves its `x3_na` companion by the same permutation"
    learn, df = regression
    eng = Engine(learn)
    x3 = eng.features['x3']
    perm = eng.permutation(torch.Generator().manual_seed(0))
    assert perm.dtype == torch.int32  # 4 bytes a row while the perturbation waits its turn
    cats, conts = eng.data.cats.clone(), eng.data.conts.clone()
    Permute(x3, perm)(eng.data, slice(0, eng.data.n), cats, conts)
    perm = perm.long()  # torch before 2.0 indexes with int64 only
    assert torch.equal(cats[:, x3.cat_idx], eng.data.cats[perm][:, x3.cat_idx])
    assert torch.equal(conts[:, x3.cont_idx], eng.data.conts[perm][:, x3.cont_idx])
    others = [i for i in range(conts.shape[1]) if i not in x3.cont_idx]
    assert torch.equal(conts[:, others], eng.data.conts[:, others])


class EncodedModel(RegressorMixin, BaseEstimator):
    "A scikit-learn-style view of a fastai tabular model on encoded inputs: categorical codes, then continuous values"
    def __init__(self, model=None, n_cat=0): self.model, self.n_cat = model, n_cat
    def fit(self, X, y): return self
    def predict(self, X, bs=8192):
        X = torch.as_tensor(X)
        with torch.no_grad():
            return torch.cat([self.model(X[i:i+bs, :self.n_cat].long(), X[i:i+bs, self.n_cat:].float())
                              for i in range(0, len(X), bs)]).numpy().ravel()


def test_agrees_with_sklearn():
    "Same fitted model, same data: our mean importances sit within the repeats' spread of scikit-learn's"
    df = ground_truth_df(2000, seed=3)
    learn = train_tabular(df, ['grp'], ['x1', 'x4', 'noise1'], 'y', epochs=8, procs=(Categorify, Normalize))
    n_repeats = 20
    pi = learn.permutation_importance(metric='loss', n_repeats=n_repeats, seed=0, show_progress=False)
    eng = Engine(learn)
    X = torch.cat([eng.data.cats.float(), eng.data.conts], 1).numpy()
    y = eng.data.ys[0].numpy().ravel()
    names = list(learn.dls.train_ds.cat_names) + list(learn.dls.train_ds.cont_names)
    sk = sk_permutation_importance(EncodedModel(learn.model.eval(), len(learn.dls.train_ds.cat_names)), X, y,
                                   scoring='neg_mean_squared_error', n_repeats=n_repeats, random_state=0)
    ours = by_feature(pi)
    for j, name in enumerate(names):
        spread = np.sqrt(ours.loc[name, 'std']**2/n_repeats + sk.importances_std[j]**2/n_repeats)
        assert abs(ours.loc[name, 'importance'] - sk.importances_mean[j]) <= 4*spread + 1e-4, name


def test_classification_accuracy_and_roc_auc(classification):
    learn, df = classification
    for metric in ('accuracy', 'roc_auc_score'):
        pi = learn.permutation_importance(metric=metric, n_repeats=4, seed=0, show_progress=False)
        assert pi.metric_name == metric and pi.higher_is_better
        assert pi.results.feature.tolist()[:3] == ['a', 'kind', 'b']
        junk = by_feature(pi).loc['junk']
        assert abs(junk.importance) < 0.1*pi.results.importance.max()
    # the default metric is the first one; the loss is lower-better
    assert learn.permutation_importance(n_repeats=1, seed=0, show_progress=False).metric_name == 'accuracy'
    by_loss = learn.permutation_importance(metric='loss', n_repeats=2, seed=0, show_progress=False)
    assert not by_loss.higher_is_better and by_loss.results.feature[0] == 'a'


def test_custom_metric_and_direction(regression):
    learn, df = regression
    def abs_err(inp, targ): return (inp.flatten()-targ.flatten()).abs().mean()
    pi = learn.permutation_importance(metric=abs_err, n_repeats=2, seed=0, show_progress=False)
    assert pi.metric_name == 'abs_err' and not pi.higher_is_better and pi.results.feature[0] == 'x1'
    assert pi.results.importance.iloc[0] > 0
    flipped = learn.permutation_importance(metric=abs_err, higher_is_better=True, n_repeats=2, seed=0, show_progress=False)
    assert np.allclose(by_feature(flipped).importance, -by_feature(pi).importance.loc[by_feature(flipped).index])
    ratio = learn.permutation_importance(metric='rmse', relative=True, n_repeats=2, seed=0, show_progress=False)
    diff = learn.permutation_importance(metric='rmse', n_repeats=2, seed=0, show_progress=False)
    assert np.allclose(ratio.scores, diff.scores/abs(diff.baseline))
    assert [m.name for m in learn.metrics] == ['_rmse']


def test_seed_reproducible(regression):
    learn, df = regression
    a = learn.permutation_importance(n_repeats=3, seed=7, show_progress=False)
    b = learn.permutation_importance(n_repeats=3, seed=7, show_progress=False)
    c = learn.permutation_importance(n_repeats=3, seed=8, show_progress=False)
    assert np.array_equal(a.scores, b.scores) and a.results.equals(b.results)
    assert not np.array_equal(a.scores, c.scores)
    unseeded = learn.permutation_importance(n_repeats=1, show_progress=False)
    assert np.array_equal(learn.permutation_importance(n_repeats=1, seed=unseeded.seed, show_progress=False).scores,
                          unseeded.scores)


def test_groups_shuffle_together(regression):
    learn, df = regression
    pi = learn.permutation_importance(groups={'signal': ['x1', 'x3']}, n_repeats=2, seed=0, show_progress=False)
    res = by_feature(pi)
    assert res.loc['signal', 'type'] == 'group' and res.loc['signal', 'columns'] == ['x3_na', 'x1', 'x3']
    assert 'x1' not in res.index and 'x3' not in res.index
    single = by_feature(learn.permutation_importance(n_repeats=2, seed=0, show_progress=False))
    assert res.loc['signal', 'importance'] > single.loc['x1', 'importance']


def test_labelled_df_and_loaded_learner(regression, tmp_path):
    learn, df = regression
    test_df = ground_truth_df(600, seed=11)
    original = test_df.copy()
    pi = learn.permutation_importance(df=test_df, n_repeats=2, seed=0, show_progress=False)
    pd.testing.assert_frame_equal(test_df, original)
    assert pi.results.feature[0] == 'x1'
    from_dl = learn.permutation_importance(dl=learn.dls.test_dl(test_df, with_labels=True), n_repeats=2, seed=0,
                                           show_progress=False)
    assert np.array_equal(from_dl.scores, pi.scores)
    learn.export(tmp_path/'learner.pkl')
    loaded = load_learner(tmp_path/'learner.pkl')
    with pytest.raises(ValueError, match="no validation data.*pass `df=`"): loaded.permutation_importance()
    again = loaded.permutation_importance(df=test_df, n_repeats=2, seed=0, show_progress=False)
    assert np.allclose(again.scores, pi.scores, atol=1e-5)


def snapshot(learn):
    "Everything a call must leave as it was"
    return dict(weights={k: v.clone() for k, v in learn.model.state_dict().items()},
                modes=[m.training for m in learn.model.modules()], metrics=list(learn.metrics),
                metric_names=[m.name for m in learn.metrics], cbs=list(learn.cbs), dls=learn.dls,
                valid=learn.dls.valid, values=deepcopy(learn.recorder.values), loss_func=learn.loss_func,
                smooth_loss=(learn.recorder.smooth_loss.count, float(learn.recorder.smooth_loss.val)),
                attrs=set(learn.__dict__), dl=getattr(learn, 'dl', None), locked=learn.lock.locked())


def assert_unchanged(learn, snap):
    now = snapshot(learn)
    assert now['weights'].keys() == snap['weights'].keys()
    assert all(torch.equal(now['weights'][k], snap['weights'][k]) for k in snap['weights'])
    assert now['modes'] == snap['modes']
    assert all(a is b for a, b in zip(now['metrics'], snap['metrics'])) and now['metric_names'] == snap['metric_names']
    assert len(now['cbs']) == len(snap['cbs']) and all(a is b for a, b in zip(now['cbs'], snap['cbs']))
    assert now['dls'] is snap['dls'] and now['valid'] is snap['valid']
    assert now['values'] == snap['values'] and now['attrs'] == snap['attrs'] and now['dl'] is snap['dl']
    assert now['loss_func'] is snap['loss_func'] and now['smooth_loss'] == snap['smooth_loss']
    assert now['locked'] == snap['locked']


class Boom(Exception): pass


def failing_metric(after, exc):
    "A metric that raises `exc` once it has been called `after` times"
    calls = [0]
    def flaky_mae(inp, targ):
        calls[0] += 1
        if calls[0] > after: raise exc
        return (inp.flatten()-targ.flatten()).abs().mean()
    return flaky_mae


@pytest.mark.parametrize('exc', [Boom('metric failed'), KeyboardInterrupt()])
def test_nothing_changes_even_on_failure(regression, exc):
    learn, df = regression
    learn.model.train()  # a learner left in training mode must stay there
    snap = snapshot(learn)
    test_df = ground_truth_df(500, seed=5)
    original = test_df.copy()
    learn.permutation_importance(df=test_df, n_repeats=2, seed=0, show_progress=False)
    assert_unchanged(learn, snap)
    with pytest.raises(type(exc)):
        learn.permutation_importance(df=test_df, metric=failing_metric(3, exc), n_repeats=2, show_progress=False)
    assert_unchanged(learn, snap)
    pd.testing.assert_frame_equal(test_df, original)
    learn.model.eval()


class FailsBeforeFit(Callback):
    def before_fit(self): raise Boom('before_fit failed')


def test_training_callbacks_stay_out_of_scoring(tmp_path):
    "Trackers, savers and loggers report on training: scoring by another metric must not trip, run or truncate them"
    df = classification_df(800)
    learn = train_tabular(df, ['kind'], ['a', 'b', 'junk'], 'label', y_block=CategoryBlock(),
                          metrics=[accuracy, RocAucBinary()], epochs=2)
    learn.path = tmp_path
    learn.add_cbs([EarlyStoppingCallback(monitor='accuracy', patience=1, reset_on_fit=False),
                   SaveModelCallback(monitor='accuracy', fname='best'), CSVLogger()])
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-3)
    log, saved = (tmp_path/'history.csv').read_text(), (tmp_path/'models'/'best.pth').stat().st_mtime_ns
    snap = snapshot(learn)
    pi = learn.permutation_importance(metric='roc_auc_score', n_repeats=2, seed=0, show_progress=False)
    assert pi.results.feature[0] == 'a'
    assert (tmp_path/'history.csv').read_text() == log and (tmp_path/'models'/'best.pth').stat().st_mtime_ns == saved
    assert_unchanged(learn, snap)
    learn.add_cb(FailsBeforeFit())
    with pytest.raises(Boom): learn.permutation_importance(n_repeats=1, show_progress=False)
    assert not learn.lock.locked()  # fastai keeps it when entering `validate` fails; a later call would hang


class Probe(Callback):
    "A batch handler that records, for each batch, whether the model is in training mode and the learner locked"
    def __init__(self): self.seen = []
    def before_batch(self): self.seen.append((self.learn.model.training, self.learn.lock.locked()))


class LoopEvents(Callback):
    "Records the events around the loop it is sent"
    def __init__(self): self.events = []
    def before_fit(self): self.events.append('before_fit')
    def before_validate(self): self.events.append('before_validate')
    def after_validate(self): self.events.append('after_validate')
    def after_fit(self): self.events.append('after_fit')


def test_loop_events_reach_callbacks_that_handle_them(regression):
    "Without a callback that handles events around the loop, the model runs in eval mode under the learner's lock, sending none; with one, it gets them as in `learn.validate`"
    learn, df = regression
    learn.model.train()
    try:
        probe = Probe()
        with learn.added_cbs(probe): learn.permutation_importance(df=df, n_repeats=1, seed=0, show_progress=False)
        assert probe.seen and set(probe.seen) == {(False, True)}
        assert learn.model.training and not learn.lock.locked()  # restored
        probe,events = Probe(),LoopEvents()
        with learn.added_cbs([probe, events]): learn.permutation_importance(df=df, n_repeats=1, seed=0, show_progress=False)
        assert set(probe.seen) == {(False, True)}
        loop = ['before_fit', 'before_validate', 'after_validate', 'after_fit']
        assert events.events and events.events == loop*(len(events.events)//4)  # once per pass over the data
    finally: learn.model.eval()


def test_bad_labels(classification, regression):
    learn, df = classification
    with pytest.raises(ValueError, match=r"label\(s\) 'maybe' the learner was not trained on; its classes are: 'no', 'yes'"):
        learn.permutation_importance(df=df.assign(label=np.where(df.index == 3, 'maybe', df.label)))
    learn, df = regression
    with pytest.raises(ValueError, match=r"'y' is missing in 2 row\(s\) of `df`, e.g. at index \[1, 4\]"):
        learn.permutation_importance(df=df.assign(y=df.y.where(~df.index.isin([1, 4]))))


def test_bad_input(regression):
    learn, df = regression
    snap = snapshot(learn)
    with pytest.raises(TypeError, match='tabular learner'):
        synth_learner().permutation_importance()
    with pytest.raises(ValueError, match="missing column.*'x4'"):
        learn.permutation_importance(df=df.drop(columns=['x4']))
    with pytest.raises(ValueError, match=r"missing column.*'y'.*by='prediction'"):
        learn.permutation_importance(df=df.drop(columns=['y']))
    with pytest.raises(ValueError, match="unknown `metric` 'r2'.*loss, rmse"):
        learn.permutation_importance(metric='r2')
    with pytest.raises(ValueError, match="unknown feature 'lat'.*x1"):
        learn.permutation_importance(groups={'location': ['lat', 'x1']})
    with pytest.raises(ValueError, match="'x1' is in two groups"):
        learn.permutation_importance(groups={'a': ['x1', 'x4'], 'b': ['x1']})
    with pytest.raises(ValueError, match='at least 1'):
        learn.permutation_importance(n_repeats=0)
    with pytest.raises(ValueError, match='at least two rows'):
        learn.permutation_importance(df=df.iloc[:1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'kind'"):
        learn.permutation_importance(kind='pct')
    with pytest.raises(ValueError, match="'x1' is named like a feature"):
        learn.permutation_importance(groups={'x1': ['x4', 'noise1']})
    with pytest.raises(TypeError, match='`n_repeats`.*whole number'):
        learn.permutation_importance(n_repeats=2.5)
    with pytest.raises(ValueError, match='`bs` must be'):
        learn.permutation_importance(bs=0)
    assert_unchanged(learn, snap)


def test_plots(regression):
    learn, df = regression
    pi = learn.permutation_importance(n_repeats=3, seed=0, show_progress=False)
    ax = pi.plot(top=3)
    assert [t.get_text() for t in ax.get_yticklabels()] == pi.results.feature.tolist()[:3]
    ax = pi.plot(kind='box')
    assert len(ax.get_yticklabels()) == len(pi.results)
    with pytest.raises(ValueError, match=r"choose one of \('bar', 'box'\)"): pi.plot(kind='pie')
    assert '<table' in pi._repr_html_() and 'x1' in repr(pi)
