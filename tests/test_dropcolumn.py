"Drop-column importance: redundant features and groups, features without effect, pairing, safety, bad input"

import random
from copy import deepcopy
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai.test_utils import synth_learner
from fastai_featimp.all import *


def redundant_df(n=1200, seed=0):
    "Regression on `x`, `z` and `grp`; `x_copy` is `x` with a little noise; `noise` has no effect"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x': rng.normal(size=n), 'z': rng.normal(size=n), 'noise': rng.normal(size=n),
                       'grp': rng.choice(list('pqrs'), n)})
    df['x_copy'] = df.x + 0.1*rng.normal(size=n)
    df['y'] = 2*df.x + df.z + df.grp.map(dict(p=-1., q=0., r=0.5, s=1.)) + 0.1*rng.normal(size=n)
    return df


def fit(learn): learn.fit_one_cycle(4, 2e-2)


def by_feature(res): return res.results.set_index('feature')


def random_states():
    return dict(python=random.getstate(), numpy=np.random.get_state()[1].copy(), torch=torch.get_rng_state().clone())


def snapshot(learn):
    "Everything a call must leave as it was"
    return dict(weights={k: v.clone() for k, v in learn.model.state_dict().items()},
                modes=[m.training for m in learn.model.modules()], metrics=list(learn.metrics),
                metric_names=[m.name for m in learn.metrics], cbs=list(learn.cbs), dls=learn.dls,
                loaders=list(learn.dls.loaders), shuffle=learn.dls.train.rng.getstate(),
                values=deepcopy(learn.recorder.values), attrs=set(learn.__dict__))


def assert_unchanged(learn, snap):
    now = snapshot(learn)
    assert all(torch.equal(now['weights'][k], snap['weights'][k]) for k in snap['weights'])
    assert now['modes'] == snap['modes']
    assert all(a is b for a, b in zip(now['metrics'], snap['metrics'])) and now['metric_names'] == snap['metric_names']
    assert len(now['cbs']) == len(snap['cbs']) and all(a is b for a, b in zip(now['cbs'], snap['cbs']))
    assert now['dls'] is snap['dls'] and all(a is b for a, b in zip(now['loaders'], snap['loaders']))
    assert now['shuffle'] == snap['shuffle']
    assert now['values'] == snap['values'] and now['attrs'] == snap['attrs']


def assert_same_random(before, after):
    "The caller's random streams are where they were"
    assert before['python'] == after['python'] and np.array_equal(before['numpy'], after['numpy'])
    assert torch.equal(before['torch'], after['torch'])


def train_learner(df, seed=0):
    set_seed(seed, reproducible=True)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['grp'],
                                     cont_names=['x', 'x_copy', 'z', 'noise'], y_names='y',
                                     valid_idx=list(range(len(df)-200, len(df))), bs=64)
    learn = tabular_learner(dls, layers=[16], metrics=rmse)
    with learn.no_bar(), learn.no_logging(): fit(learn)
    return learn


@pytest.fixture(scope='module')
def redundant(one_thread):
    "A learner on `redundant_df`, its drop-column importance alone and with the pair grouped, and its state before"
    df = redundant_df()
    learn = train_learner(df)
    learn.model.train()  # a learner left in training mode must stay there
    snap, rng_before = snapshot(learn), random_states()
    single = learn.drop_column_importance(fit, seeds=(0, 1, 2), show_progress=False)
    pair = learn.drop_column_importance(fit, groups={'pair': ['x', 'x_copy']}, seeds=(0, 1, 2), show_progress=False)
    return SimpleNamespace(learn=learn, df=df, snap=snap, single=single, pair=pair, rng_before=rng_before,
                           rng_after=random_states())


def test_redundant_pair_small_alone_large_together(redundant):
    single, pair = by_feature(redundant.single), by_feature(redundant.pair)
    assert pair.index[0] == 'pair' and pair.loc['pair', 'type'] == 'group'
    assert pair.loc['pair', 'columns'] == ['x', 'x_copy']
    strongest = pair.loc['pair', 'importance']
    assert pair.loc['pair', 'ci_low'] > 0
    # either copy alone: the network retrained on the other loses little
    assert single.loc[['x', 'x_copy'], 'importance'].abs().max() < 0.1*strongest
    # features with a real effect are clearly positive, the group above both of them
    assert (single.loc[['z', 'grp'], 'ci_low'] > 0).all()
    assert pair.loc['pair', 'ci_low'] > single.loc[['z', 'grp'], 'ci_high'].max()


def test_feature_without_effect_reaches_zero(redundant):
    single = by_feature(redundant.single)
    noise = single.loc['noise']
    assert noise.ci_low <= 0 <= noise.ci_high
    assert abs(noise.importance) < 0.05*single.importance.max()


def test_paired_baselines_and_result(redundant):
    single, pair = redundant.single, redundant.pair
    assert single.scores.shape == (5, 3) and pair.scores.shape == (4, 3)
    # the baselines of both calls are the same trainings, bit for bit, and so are the units they share
    assert np.array_equal(single.baseline_scores, pair.baseline_scores)
    for f in ('z', 'grp', 'noise'):
        assert np.array_equal(single.scores[single.results.feature.tolist().index(f)],
                              pair.scores[pair.results.feature.tolist().index(f)])
    assert single.baseline == pytest.approx(single.baseline_scores.mean())
    assert single.metric_name == 'rmse' and single.higher_is_better is False
    assert single.label == 'rmse increase when dropped and retrained'
    assert np.allclose(single.results.importance, single.scores.mean(1))
    assert single.results.importance.is_monotonic_decreasing
    ax = single.plot(kind='box')
    assert [t.get_text() for t in ax.get_yticklabels()] == single.results.feature.tolist()


def test_learner_and_random_state_unchanged(redundant):
    assert_unchanged(redundant.learn, redundant.snap)
    assert redundant.learn.model.training
    assert_same_random(redundant.rng_before, redundant.rng_after)


def test_auto_groups_on_a_dataframe_by_the_loss(redundant, capsys):
    "`groups='auto'` finds the pair; scored on the validation rows as a DataFrame, by the loss, the seed-0 networks are the ones before"
    learn, df, single, pair = redundant.learn, redundant.df, redundant.single, redundant.pair
    valid = df.iloc[-200:].copy()
    capsys.readouterr()
    auto = learn.drop_column_importance(fit, groups='auto', seeds=(0,), df=valid, metric='loss', show_progress=False)
    assert capsys.readouterr().out == ''  # silenced: not even fastprogress's glyph
    pd.testing.assert_frame_equal(valid, df.iloc[-200:])
    assert auto.metric_name == 'loss' and auto.label == 'loss increase when dropped and retrained'
    assert sorted(auto.results.feature) == ['grp', 'noise', 'x +1', 'z']
    assert auto.results.set_index('feature').loc['x +1', 'columns'] == ['x', 'x_copy']
    # the loss is the mean squared error: the square of the rmse of the same network on the same rows
    assert auto.baseline_scores[0] == pytest.approx(single.baseline_scores[0]**2, rel=1e-4)
    def retrained(res, unit): return res.baseline_scores[0] + res.scores[res.results.feature.tolist().index(unit), 0]
    assert retrained(auto, 'x +1') == pytest.approx(retrained(pair, 'pair')**2, rel=1e-4)
    assert retrained(auto, 'z') == pytest.approx(retrained(single, 'z')**2, rel=1e-4)
    assert_unchanged(learn, redundant.snap)


def test_training_sees_the_neutral_inputs(redundant):
    "While `fit` trains, the dropped feature's codes are the missing level and its values the training mean"
    learn = redundant.learn
    eng = Engine(learn)
    seen = []
    class Spy(Callback):
        order = PerturbInputs.order + 1
        def before_batch(self): seen.append(tuple(x.clone() for x in self.xb))
    grp, x = [eng.neutral(eng.features[n]) for n in ('grp', 'x')]
    dls = DataLoaders(*[dl.new() for dl in learn.dls.loaders])
    model = Learner(dls, reinitialise(deepcopy(learn.model)), loss_func=learn.loss_func)
    with no_random(0), model.no_bar(), model.no_logging(), model.added_cbs([PerturbInputs(grp), PerturbInputs(x), Spy()]):
        model.fit(1)
    cats, conts = map(torch.cat, zip(*seen))
    assert (cats[:, grp.feature.cat_idx] == 0).all()
    train_mean = learn.dls.train_ds.conts['x'].mean()
    assert torch.allclose(conts[:, x.feature.cont_idx], torch.tensor(train_mean, dtype=conts.dtype))
    others = [i for i in range(conts.shape[1]) if i not in x.feature.cont_idx]
    assert conts[:, others].std(0).min() > 0.5


class Boom(Exception): pass


@pytest.mark.parametrize('exc', [Boom('training failed'), KeyboardInterrupt()])
def test_nothing_changes_when_fit_fails(redundant, exc):
    learn = redundant.learn
    calls = []
    def failing_fit(l):
        calls.append(1)
        l.fit(1, 1e-2)
        if len(calls) == 2: raise exc
    before = random_states()
    with pytest.raises(type(exc)): learn.drop_column_importance(failing_fit, show_progress=False)
    assert len(calls) == 2
    assert_unchanged(learn, redundant.snap)
    assert_same_random(before, random_states())


class Scaled(nn.Module):
    "A model with a weight of its own that it cannot redraw"
    def __init__(self, model): super().__init__(); self.model, self.scale = model, nn.Parameter(torch.ones(1))
    def forward(self, *x): return self.model(*x)*self.scale


def test_reinitialise(redundant):
    trained = redundant.learn.model
    def fresh(seed):
        with no_random(seed): return reinitialise(deepcopy(trained))
    a, b, c = fresh(0), fresh(0), fresh(1)
    assert torch.equal(a.bn_cont.running_mean, torch.zeros(4)) and torch.equal(a.bn_cont.running_var, torch.ones(4))
    assert a.embeds[0].weight.std() < 0.02 < trained.embeds[0].weight.std()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.layers[0][0].weight, c.layers[0][0].weight)
    plain = nn.Embedding(50, 8)
    with torch.no_grad(): plain.weight.zero_()
    assert 0.8 < reinitialise(plain).weight.std() < 1.2  # PyTorch's embedding: its own standard normal
    frozen = deepcopy(trained).requires_grad_(False)
    assert all(p.requires_grad for p in reinitialise(frozen).parameters())
    with pytest.raises(TypeError, match="'scale'"): reinitialise(Scaled(deepcopy(trained)))


def test_bad_input(redundant, tmp_path):
    learn, df = redundant.learn, redundant.df
    with pytest.raises(TypeError, match='`fit` must be a callable'): learn.drop_column_importance(5)
    with pytest.raises(ValueError, match='non-empty list'): learn.drop_column_importance(fit, seeds=())
    with pytest.raises(TypeError, match='non-empty list'): learn.drop_column_importance(fit, seeds=3)
    with pytest.raises(ValueError, match='repeats'): learn.drop_column_importance(fit, seeds=(1, 1))
    with pytest.raises(ValueError, match="unknown feature 'lat'.*x_copy"):
        learn.drop_column_importance(fit, groups={'location': ['lat', 'x']})
    with pytest.raises(ValueError, match="unknown `metric` 'r2'.*loss, rmse"):
        learn.drop_column_importance(fit, metric='r2')
    with pytest.raises(ValueError, match="missing column.*'z'"):
        learn.drop_column_importance(fit, df=df.drop(columns=['z']))
    with pytest.raises(TypeError, match='tabular learner'):
        synth_learner().drop_column_importance(fit)
    learn.export(tmp_path/'learner.pkl')
    with pytest.raises(ValueError, match="needs the learner's training data"):
        load_learner(tmp_path/'learner.pkl').drop_column_importance(fit)
    scaled = Learner(learn.dls, Scaled(learn.model), loss_func=MSELossFlat())
    with pytest.raises(TypeError, match="weight\\(s\\) 'scale'"): scaled.drop_column_importance(fit)
    assert_unchanged(learn, redundant.snap)
