"Trust: every entry point refuses bad input up front and leaves the learner, the frame and the random state as they were"

import inspect, io, random, re, warnings
from contextlib import contextmanager
from copy import deepcopy
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai.test_utils import synth_learner
from fastai_featimp.all import *
from conftest import train_tabular


# --- small learners, shared by the module -------------------------------------------------------------------------

def trust_df(n=300, seed=0):
    "Regression data with every kind of column: correlated `x1`/`x2`, `x3` with missing values, an integer count, a string and a bool category"
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    df = pd.DataFrame({'x1': x1, 'x2': x1 + 0.3*rng.normal(size=n), 'x3': rng.normal(size=n), 'cnt': rng.integers(0, 9, n),
                       'grp': rng.choice(list('pqr'), n), 'flag': rng.random(n) < 0.5})
    df['y'] = 2*df.x1 + df.grp.map(dict(p=-1., q=0., r=1.)) + 0.5*df.x3.fillna(0) + 0.3*df.flag + 0.1*rng.normal(size=n)
    df.loc[rng.random(n) < 0.1, 'x3'] = np.nan
    df.loc[rng.random(n) < 0.05, 'grp'] = np.nan
    return df

def train_reg(df, epochs=2):
    return train_tabular(df, ['grp', 'flag'], ['x1', 'x2', 'x3', 'cnt'], 'y', metrics=rmse, epochs=epochs, layers=(16, 8))

@pytest.fixture(scope='module')
def reg():
    "A regression learner with rmse, and its frame"
    df = trust_df()
    return SimpleNamespace(learn=train_reg(df), df=df)

@pytest.fixture(scope='module')
def clf():
    "A binary classifier with accuracy, and its frame"
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n), 'kind': rng.choice(['u', 'v', 'w'], n)})
    df['label'] = np.where(3*df.a + (df.kind=='w') + rng.normal(size=n) > 0, 'yes', 'no')
    learn = train_tabular(df, ['kind'], ['a', 'b'], 'label', y_block=CategoryBlock(), metrics=accuracy, epochs=2, layers=(16,))
    return SimpleNamespace(learn=learn, df=df)

@pytest.fixture(scope='module')
def intcols():
    "A learner trained on `pd.DataFrame(X)`: integer column names, `1` a near copy of `0`, `3` a count with four values"
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5))
    X[:, 1] = X[:, 0] + 0.05*rng.normal(size=300)
    X[:, 3] = rng.integers(0, 4, 300)
    df = pd.DataFrame(X)
    df['y'] = 2*df[0] + df[3] + 0.1*rng.normal(size=300)
    learn = train_tabular(df, [], [0, 1, 2, 3, 4], 'y', metrics=rmse, epochs=2, layers=(16,))
    return SimpleNamespace(learn=learn, df=df)


def fit_once(learn):
    "The training recipe drop-column importance repeats"
    learn.fit(1, 1e-2)


# --- what the checks watch ---------------------------------------------------------------------------------------

def random_state():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()

def random_changes(before, after):
    "What moved between two `random_state()`s"
    moved = []
    if before[0] != after[0]: moved.append("python's `random`")
    if not all(np.array_equal(a, b) for a,b in zip(before[1], after[1])): moved.append("numpy's global generator")
    if not torch.equal(before[2], after[2]): moved.append("torch's generator")
    return moved

@pytest.fixture(autouse=True)
def own_random_state():
    "Each test starts from the same global random state, and gives back the one it found"
    saved = random_state()
    random.seed(11); np.random.seed(11); torch.manual_seed(11)
    yield
    random.setstate(saved[0]); np.random.set_state(saved[1]); torch.set_rng_state(saved[2])

def learner_state(learn):
    "Everything of `learn` a user would notice changed: weights, modes, metrics, callbacks, optimiser, recorder"
    opt = learn.opt
    return dict(
        model=learn.model, weights={k: v.detach().clone() for k,v in learn.model.state_dict().items()},
        modes=[m.training for m in learn.model.modules()], metrics=list(learn.metrics), cbs=list(learn.cbs),
        loss_func=learn.loss_func, dls=learn.dls, lr=learn.lr, opt=opt,
        hypers=None if opt is None else deepcopy([dict(h) for h in opt.hypers]),
        opt_state=None if opt is None else [{k: v.clone() if torch.is_tensor(v) else v for k,v in opt.state[p].items()}
                                              for p in opt.all_params(with_grad=False).itemgot(0)],
        recorder=deepcopy([learn.recorder.values, [float(l) for l in learn.recorder.losses], learn.recorder.lrs,
                           learn.recorder.iters, list(learn.recorder.metric_names)]))

def learner_changes(before, learn):
    "What of `learn` differs from `before`, a `learner_state`"
    after,moved = learner_state(learn),[]
    for k in ('model', 'loss_func', 'dls', 'opt'):
        if before[k] is not after[k]: moved.append(f'learn.{k} was replaced')
    if before['weights'].keys() != after['weights'].keys() or \
       not all(torch.equal(v, after['weights'][k]) for k,v in before['weights'].items()): moved.append('weights')
    if before['modes'] != after['modes']: moved.append('training modes')
    if [id(m) for m in before['metrics']] != [id(m) for m in after['metrics']]: moved.append('metrics')
    if [id(c) for c in before['cbs']] != [id(c) for c in after['cbs']]: moved.append('callbacks')
    if before['lr'] != after['lr']: moved.append('learn.lr')
    if before['hypers'] != after['hypers']: moved.append("optimiser's hyper-parameters")
    if before['opt_state'] is not None and after['opt_state'] is not None and (len(before['opt_state']) != len(after['opt_state']) or any(
            a.keys() != b.keys() or any(not (torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k]==b[k]) for k in a)
            for a,b in zip(before['opt_state'], after['opt_state']))): moved.append("optimiser's state")
    if before['recorder'] != after['recorder']: moved.append('recorder values')
    return moved

@contextmanager
def forwards(model, fail_at=None, exc=KeyboardInterrupt):
    "Count the forward passes of `model` (and of copies made inside); raise `exc` on pass number `fail_at`"
    count = [0]
    def hook(module, inputs):
        count[0] += 1
        if count[0]==fail_at: raise exc('stopped by the test')
    handle = model.register_forward_pre_hook(hook)
    try: yield lambda: count[0]
    finally: handle.remove()

def names(message, word):
    "Whether `message` contains `word` as a whole word"
    return re.search(rf'(?<![\w.]){re.escape(str(word))}(?!\w)', message) is not None

def assert_refused(call, learn, exc, words, df=None):
    "`call()` raises `exc` naming every one of `words`, before any forward pass, leaving `learn`, `df` and the random state as they were"
    frame,state,rng = None if df is None else df.copy(deep=True),learner_state(learn),random_state()
    raised = None
    with forwards(learn.model) as count:
        try: call()
        except Exception as e: raised = e
    problems = []
    if raised is None: problems.append(f'nothing raised, {exc.__name__} expected')
    else:
        if not isinstance(raised, exc): problems.append(f'raised {type(raised).__name__}, {exc.__name__} expected')
        missing = [w for w in words if not names(str(raised), w)]
        if missing: problems.append(f"message does not name {', '.join(map(repr, missing))}")
        problems.append(f'message: {type(raised).__name__}: {raised}')
    if count(): problems.append(f'{count()} forward pass(es) before the error')
    changed = learner_changes(state, learn) + random_changes(rng, random_state())
    if df is not None:
        try: pd.testing.assert_frame_equal(df, frame)
        except AssertionError: changed.append('the DataFrame')
    if changed: problems.append(f"changed: {', '.join(changed)}")
    if raised is None or not isinstance(raised, exc) or len(problems) > 1: pytest.fail('\n'.join(problems), pytrace=False)


# --- the entry points --------------------------------------------------------------------------------------------

def entry(method, *args, **defaults):
    "Call `learn.method(*args, **defaults)` with the test's keyword arguments on top"
    def call(learn, **kwargs): return getattr(learn, method)(*args, **{**defaults, **kwargs})
    return call

quiet = dict(show_progress=False)
ENTRIES = {
    'permutation':             entry('permutation_importance', n_repeats=2, seed=0, **quiet),
    'permutation_prediction':  entry('permutation_importance', by='prediction', n_repeats=2, seed=0, **quiet),
    'permutation_groups':      entry('permutation_importance', groups={'pair': ['x1', 'x2']}, n_repeats=2, seed=0, **quiet),
    'permutation_auto':        entry('permutation_importance', groups='auto', n_repeats=2, seed=0, **quiet),
    'permutation_conditional': entry('permutation_importance', conditional=True, n_repeats=2, seed=0, **quiet),
    'feature_correlation':     entry('feature_correlation'),
    'partial_dependence':      entry('partial_dependence', 'x1', n_points=4, ice=3, seed=0, **quiet),
    'partial_dependence_2d':   entry('partial_dependence', ['x1', 'grp'], n_points=3, **quiet),
    'value_importance':        entry('value_importance', 'grp', **quiet),
    'drop_column':             entry('drop_column_importance', fit=fit_once, seeds=(0,), **quiet),
    'shap_values':             entry('shap_values', n_background=20, seed=0, **quiet),
    'shap_values_auto':        entry('shap_values', groups='auto', n_background=20, seed=0, **quiet),
    'sage':                    entry('sage_importance', n_background=20, n_permutations=40, seed=0, **quiet),
    'sage_auto':               entry('sage_importance', groups='auto', n_background=20, n_permutations=40, seed=0, **quiet),
    'ale':                     entry('accumulated_local_effects', 'x1', bins=4, **quiet),
    'ale_2d':                  entry('accumulated_local_effects', ['x1', 'x2'], bins=3, **quiet),
    'interaction_strength':    entry('interaction_strength', n_rows=30, n_background=10, seed=0, **quiet),
    'shap_interactions':       entry('shap_values', interactions=True, n_background=20, seed=0, **quiet),
}
ALL = list(ENTRIES)
PERMUTATION = [e for e in ALL if e.startswith('permutation')]
SHAPLEY = ['shap_values', 'shap_values_auto', 'sage', 'sage_auto']
AUTO = ['permutation_auto', 'feature_correlation', 'shap_values_auto', 'sage_auto']
LABELLED = ['permutation', 'permutation_groups', 'permutation_auto', 'permutation_conditional', 'value_importance', 'drop_column']
READS_LABELS = LABELLED + ['sage', 'sage_auto']  # SAGE scores the loss, without a choice of metric
UNLABELLED = [e for e in ALL if e not in READS_LABELS]
WITH_BS = [e for e in ALL if e not in ('drop_column', 'feature_correlation')]
SEEDED = PERMUTATION + ['partial_dependence', 'partial_dependence_2d', 'interaction_strength', 'shap_interactions'] + SHAPLEY
WITH_PROGRESS = [e for e in ALL if e != 'feature_correlation']

def my_score(preds, targs):
    "A metric whose name says nothing of its direction"
    return ((preds.view(-1) - targs.view(-1))**2).mean()

# id, keyword arguments (or a function of the fixture giving them), exception, words the message must contain, entries
BAD_PARAMETERS = [
    ('higher_is_better=no',  dict(higher_is_better='no'), TypeError, ['higher_is_better', "'no'"], LABELLED),
    ('higher_is_better=1',   dict(higher_is_better=1), TypeError, ['higher_is_better'], LABELLED),
    ('metric=5',             dict(metric=5), TypeError, ['metric', '5'], LABELLED),
    ('metric=RocAucBinary',  dict(metric=RocAucBinary), TypeError, ['metric', 'RocAucBinary()'], LABELLED),
    ('metric=R2Score',       dict(metric=R2Score), TypeError, ['metric', 'R2Score()'], LABELLED),
    ('metric=nn.L1Loss',     dict(metric=nn.L1Loss), TypeError, ['metric', 'L1Loss()'], LABELLED),
    ('metric=nameless',      dict(metric=my_score), ValueError, ['higher_is_better'], LABELLED),
    ('metric=lambda',        dict(metric=lambda p, t: (p-t).abs().mean()), ValueError, ['higher_is_better'], LABELLED),
    ('conditional=no',       dict(conditional='no'), TypeError, ['conditional', "'no'"], ['permutation']),
    ('n_repeats=True',       dict(n_repeats=True), TypeError, ['n_repeats', 'True'], PERMUTATION),
    ('n_repeats=2.0',        dict(n_repeats=2.0), TypeError, ['n_repeats', '2.0'], PERMUTATION),
    ('n_repeats=0',          dict(n_repeats=0), ValueError, ['n_repeats', '0'], PERMUTATION),
    ('bs=0',                 dict(bs=0), ValueError, ['bs', '0'], WITH_BS),
    ('bs=2.5',               dict(bs=2.5), TypeError, ['bs', '2.5'], WITH_BS),
    ('seed=a',               dict(seed='a'), TypeError, ['seed', "'a'"], SEEDED),
    ('seed=-1',              dict(seed=-1), ValueError, ['seed', '-1'], SEEDED),
    ('seed=1.5',             dict(seed=1.5), TypeError, ['seed', '1.5'], SEEDED),
    ('show_progress=no',     dict(show_progress='no'), TypeError, ['show_progress', "'no'"], WITH_PROGRESS),
    ('by=labels',            dict(by='labels'), ValueError, ['by', "'labels'"], ['permutation', 'value_importance']),
    ('kind=pct',             dict(kind='pct'), TypeError, ['kind'], ['permutation']),
    ('groups=5',             dict(groups=5), TypeError, ['groups', '5'], ['permutation', 'drop_column', 'shap_values', 'sage']),
    ('threshold=2',          dict(threshold=2), ValueError, ['threshold', '2'], AUTO),
    ('threshold=str',        dict(threshold='0.7'), TypeError, ['threshold', "'0.7'"], AUTO),
    ('threshold=0',          dict(threshold=0), ValueError, ['threshold', '0'], AUTO),
    ('tol=0',                dict(tol=0), ValueError, ['tol', '0'], ['sage']),
    ('tol=1',                dict(tol=1), ValueError, ['tol', '1'], ['sage']),
    ('tol=str',              dict(tol='0.1'), TypeError, ['tol', "'0.1'"], ['sage']),
    ('n_background=1',       dict(n_background=1), ValueError, ['n_background', '1'], ['shap_values', 'sage']),
    ('max_evals=1.5',        dict(max_evals=1.5), TypeError, ['max_evals', '1.5'], ['shap_values']),
    ('n_permutations=0',     dict(n_permutations=0), ValueError, ['n_permutations', '0'], ['sage']),
    ('max_permutations=1',   dict(max_permutations=1), ValueError, ['max_permutations', '1'], ['sage']),
    ('n_draws=1.0',          dict(n_draws=1.0), TypeError, ['n_draws', '1.0'], ['sage']),
    ('output=nope',          dict(output='nope'), ValueError, ['output', "'nope'"], ['shap_values']),
    ('min_association=0',    dict(min_association=0), ValueError, ['min_association'], ['permutation_conditional']),
    ('max_conditioning=1.5', dict(max_conditioning=1.5), TypeError, ['max_conditioning', '1.5'], ['permutation_conditional']),
    ('n_bins=True',          dict(n_bins=True), TypeError, ['n_bins', 'True'], ['permutation_conditional']),
    ('n_points=1',           dict(n_points=1), ValueError, ['n_points', '1'], ['partial_dependence', 'partial_dependence_2d']),
    ('n_points=5.0',         dict(n_points=5.0), TypeError, ['n_points', '5.0'], ['partial_dependence', 'partial_dependence_2d']),
    ('ice=yes',              dict(ice='yes'), TypeError, ['ice', "'yes'"], ['partial_dependence']),
    ('ice=2.5',              dict(ice=2.5), TypeError, ['ice', '2.5'], ['partial_dependence']),
    ('ice=-1',               dict(ice=-1), ValueError, ['ice', '-1'], ['partial_dependence']),
    ('seeds=[0,a]',          dict(seeds=[0, 'a']), TypeError, ['seeds', "'a'"], ['drop_column']),
    ('seeds=[0,0.5]',        dict(seeds=[0, 0.5]), TypeError, ['seeds', '0.5'], ['drop_column']),
    ('seeds=3',              dict(seeds=3), TypeError, ['seeds', '3'], ['drop_column']),
    ('seeds=[1,1]',          dict(seeds=[1, 1]), ValueError, ['seeds', '1'], ['drop_column']),
    ('fit=5',                dict(fit=5), TypeError, ['fit', '5'], ['drop_column']),
    ('dl=learn.dls',         lambda s: dict(dl=s.learn.dls), TypeError, ['dl', 'learn.dls.valid'], ALL),
    ('dl=frame',             lambda s: dict(dl=s.df), TypeError, ['dl'], ALL),
    ('df=array',             lambda s: dict(df=s.df.to_numpy()), TypeError, ['df', 'ndarray'], ALL),
    ('df_and_dl',            lambda s: dict(df=s.df, dl=s.learn.dls.valid), ValueError, ['df', 'dl'], ALL),
]

@pytest.mark.parametrize('name,case', [(e, c) for c in BAD_PARAMETERS for e in c[-1]],
                         ids=[f'{e}-{c[0]}' for c in BAD_PARAMETERS for e in c[-1]])
def test_bad_parameter(reg, name, case):
    _,kwargs,exc,words,_ = case
    kwargs = kwargs(reg) if callable(kwargs) else kwargs
    df = kwargs.get('df')
    assert_refused(lambda: ENTRIES[name](reg.learn, **kwargs), reg.learn, exc, words, df if isinstance(df, pd.DataFrame) else None)


def test_fit_bound_to_the_learner(reg):
    "`learn.fit_one_cycle` would train the user's learner instead of the copies: refused (on a learner of its own)"
    learn = train_reg(reg.df, epochs=1)
    assert_refused(lambda: learn.drop_column_importance(learn.fit_one_cycle, seeds=(0,), show_progress=False),
                   learn, ValueError, ['fit', 'fit_one_cycle'])


def with_text(df, column, row, value):
    "A copy of `df` with `value` (a string) in `column` at `row`"
    out = df.astype({column: object})
    out.loc[row, column] = value
    return out

def with_value(df, column, row, value):
    out = df.copy()
    out.loc[row, column] = value
    return out

# id, the bad frame from the good one, exception, words, entries
BAD_FRAMES = [
    ('duplicate_column', lambda df: pd.concat([df, df[['x1']]], axis=1), ValueError, ['x1'], ALL),
    ('missing_column',   lambda df: df.drop(columns='x2'), ValueError, ['x2'], ALL),
    ('string_in_cont',   lambda df: with_text(df, 'x1', 123, 'abc'), ValueError, ['x1', '123'], ALL),
    ('inf',              lambda df: with_value(df, 'x2', 57, np.inf), ValueError, ['x2', '57'], ALL),
    ('minus_inf',        lambda df: with_value(df.astype({'cnt': float}), 'cnt', 201, -np.inf), ValueError, ['cnt', '201'], ALL),
    ('string_labels',    lambda df: df.assign(y=df.y.astype(str)), ValueError, ['y'], READS_LABELS),
    ('missing_label',    lambda df: with_value(df, 'y', 42, np.nan), ValueError, ['y', '42'], READS_LABELS),
]

@pytest.mark.parametrize('name,case', [(e, c) for c in BAD_FRAMES for e in c[-1]],
                         ids=[f'{e}-{c[0]}' for c in BAD_FRAMES for e in c[-1]])
def test_bad_frame(reg, name, case):
    _,make,exc,words,_ = case
    bad = make(reg.df)
    assert_refused(lambda: ENTRIES[name](reg.learn, df=bad), reg.learn, exc, words, bad)


CLASSIFIER_ENTRIES = {
    'permutation':      entry('permutation_importance', n_repeats=2, seed=0, **quiet),
    'value_importance': entry('value_importance', 'kind', **quiet),
    'drop_column':      entry('drop_column_importance', fit=fit_once, seeds=(0,), **quiet),
}

@pytest.mark.parametrize('name', list(CLASSIFIER_ENTRIES))
def test_unseen_class(clf, name):
    bad = with_value(clf.df, 'label', 9, 'maybe')
    assert_refused(lambda: CLASSIFIER_ENTRIES[name](clf.learn, df=bad), clf.learn, ValueError, ['label', "'maybe'", '9'], bad)


@pytest.mark.parametrize('name', ALL)
def test_learner_without_model_or_tabular_data(reg, name):
    bare = Learner(reg.learn.dls, nn.Linear(1, 1), loss_func=MSELossFlat())
    bare.model = None
    with pytest.raises(ValueError, match='model'): ENTRIES[name](bare)
    with pytest.raises(TypeError, match='tabular'): ENTRIES[name](synth_learner())


# --- valid input is taken ----------------------------------------------------------------------------------------

def same_result(a, b):
    "Assert two results of an entry point hold the same numbers"
    table = lambda r: r.matrix if isinstance(r, FeatureCorrelation) else r.results
    pd.testing.assert_frame_equal(table(a), table(b))

def test_numpy_integers_are_whole_numbers(reg):
    learn,i = reg.learn,np.int64
    same_result(learn.permutation_importance(n_repeats=i(2), bs=i(64), seed=i(3), **quiet),
                learn.permutation_importance(n_repeats=2, bs=64, seed=3, **quiet))
    a = learn.partial_dependence('x1', n_points=i(4), ice=i(5), seed=i(1), bs=i(64), **quiet)
    b = learn.partial_dependence('x1', n_points=4, ice=5, seed=1, bs=64, **quiet)
    same_result(a, b); pd.testing.assert_frame_equal(a.ice, b.ice)
    same_result(learn.value_importance('grp', bs=i(64), **quiet), learn.value_importance('grp', bs=64, **quiet))
    same_result(learn.feature_correlation(threshold=np.float32(0.5)), learn.feature_correlation(threshold=0.5))
    assert learn.permutation_importance(conditional=np.True_, max_conditioning=i(1), n_bins=i(3), n_repeats=1, seed=0, **quiet).conditional

def test_numpy_seeds(reg):
    learn = reg.learn
    same_result(learn.drop_column_importance(fit_once, seeds=np.arange(2), groups={'xs': ['x1', 'x2', 'x3', 'cnt']}, **quiet),
                learn.drop_column_importance(fit_once, seeds=[0, 1], groups={'xs': ['x1', 'x2', 'x3', 'cnt']}, **quiet))

def test_direction_given_for_a_nameless_metric(reg):
    pi = reg.learn.permutation_importance(metric=my_score, higher_is_better=False, n_repeats=2, seed=0, **quiet)
    assert pi.results.set_index('feature').loc['x1', 'importance'] > 0

def test_labels_are_not_read_without_a_metric(reg):
    "By prediction, labels are neither needed nor read: strings or gaps in them change nothing"
    learn,df = reg.learn,reg.df
    for name in UNLABELLED:
        clean = ENTRIES[name](learn, df=df.drop(columns='y'))
        for labels in ('?', np.nan):
            same_result(ENTRIES[name](learn, df=df.assign(y=labels)), clean)


# --- pandas dtypes and column order ------------------------------------------------------------------------------

def reordered(df): return df[list(df.columns[::-1])]

DTYPE_VARIANTS = {
    'Float64':  lambda df: df.astype({'x1': 'Float64', 'x2': 'Float64', 'x3': 'Float64', 'y': 'Float64'}),
    'Int64':    lambda df: df.astype({'cnt': 'Int64'}),
    'boolean':  lambda df: df.astype({'flag': 'boolean'}),
    'string':   lambda df: df.astype({'grp': 'string'}),
    'category': lambda df: df.astype({'grp': pd.CategoricalDtype(['r', 'q', 'p']), 'flag': 'category'}),
    'shuffled': reordered,
    'all':      lambda df: reordered(df.astype({'x1': 'Float64', 'x2': 'Float64', 'x3': 'Float64', 'cnt': 'Int64', 'flag': 'boolean',
                                                'grp': pd.CategoricalDtype(['r', 'q', 'p']), 'y': 'Float64'})),
}

@pytest.fixture(scope='module')
def clean_results(reg):
    "Each entry point's result on the clean frame, computed once"
    return {}

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('variant', list(DTYPE_VARIANTS))
def test_dtypes_and_column_order(reg, clean_results, variant, name):
    "Nullable dtypes, `category` (in another order than the learner's categories) and shuffled columns give the clean frame's numbers"
    if variant != 'all' and name not in ('permutation', 'partial_dependence_2d', 'value_importance', 'feature_correlation'):
        pytest.skip('each variant alone through four entry points; all of them at once through every one')
    if name not in clean_results: clean_results[name] = ENTRIES[name](reg.learn, df=reg.df)
    frame = DTYPE_VARIANTS[variant](reg.df)
    given = frame.copy(deep=True)
    same_result(ENTRIES[name](reg.learn, df=frame), clean_results[name])
    pd.testing.assert_frame_equal(frame, given)

def test_category_labels(clf):
    labels = clf.df.astype({'label': pd.CategoricalDtype(['yes', 'no'])})
    for name,call in CLASSIFIER_ENTRIES.items():
        same_result(call(clf.learn, df=labels), call(clf.learn, df=clf.df))


# --- integer column names ----------------------------------------------------------------------------------------

def test_integer_names_permutation(intcols):
    learn = intcols.learn
    res = learn.permutation_importance(n_repeats=2, seed=0, **quiet).results
    assert sorted(res.feature.tolist()) == [0, 1, 2, 3, 4]
    for groups,name in (('auto', '0 +1'), ([[0, 1]], '0+1')):
        res = learn.permutation_importance(groups=groups, n_repeats=2, seed=0, **quiet).results.set_index('feature')
        assert sorted(res.index, key=str) == [name, 2, 3, 4]
        assert res.loc[name, 'columns'] == [0, 1] and res.loc[2, 'columns'] == [2]
    res = learn.permutation_importance(groups={'pair': [0, 1]}, n_repeats=2, seed=0, **quiet).results
    assert sorted(res.feature.tolist(), key=str) == [2, 3, 4, 'pair']
    res = learn.permutation_importance(conditional=True, n_repeats=2, seed=0, **quiet).results.set_index('feature')
    assert res.loc[0, 'conditioned_on'][0] == 1 and res.loc[1, 'conditioned_on'][0] == 0

def test_integer_names_correlation(intcols):
    corr = intcols.learn.feature_correlation()
    assert corr.matrix.index.tolist() == [0, 1, 2, 3, 4] and corr.matrix.columns.tolist() == [0, 1, 2, 3, 4]
    assert corr.groups == {'0 +1': [0, 1]} and all(type(n) is int for n in corr.groups['0 +1'])
    corr.plot(); corr.plot(kind='heatmap')

def test_integer_names_dependence(intcols):
    learn = intcols.learn
    pdp = learn.partial_dependence(0, n_points=4, ice=3, seed=0, **quiet)
    assert pdp.results.columns.tolist() == [0, 'y'] and len(pdp.results)==4 and 0 in pdp.ice.columns
    pdp.plot()
    pdp2 = learn.partial_dependence([0, 3], n_points=3, **quiet)
    assert pdp2.results.columns.tolist() == [0, 3, 'y'] and len(pdp2.results)==3*3  # 3 quantiles of each
    pdp2.plot()
    vi = learn.value_importance(3, **quiet)
    assert sorted(vi.results.value.tolist()) == [0., 1., 2., 3.]
    assert repr(vi) and vi.results['count'].sum() == len(intcols.learn.dls.valid_ds)
    vi.plot()

def test_integer_names_drop_column(intcols):
    res = intcols.learn.drop_column_importance(fit_once, seeds=(0,), groups=[[0, 1], [2, 3, 4]], **quiet).results
    assert sorted(res.feature.tolist()) == ['0+1', '2+3+4']
    assert sorted(map(tuple, res['columns'])) == [(0, 1), (2, 3, 4)]


# --- the global random state, on success, on error and on Ctrl-C -------------------------------------------------

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('ending', ['completes', 'raises', 'interrupted'])
def test_random_state_kept(reg, name, ending):
    "Python's, NumPy's and torch's global generators are where they were, however the call ends; so are the learner and the frame"
    if name=='feature_correlation' and ending != 'completes': pytest.skip('feature_correlation runs no forward pass to stop')
    learn,df = reg.learn,reg.df
    frame,state,rng = df.copy(deep=True),learner_state(learn),random_state()
    fail_at,exc = {'completes': (None, None), 'raises': (1, RuntimeError), 'interrupted': (1, KeyboardInterrupt)}[ending]
    with forwards(learn.model, fail_at, exc or RuntimeError):
        if exc is None: ENTRIES[name](learn, df=df)
        else:
            with pytest.raises(exc): ENTRIES[name](learn, df=df)
    assert random_changes(rng, random_state()) == []
    assert learner_changes(state, learn) == []
    pd.testing.assert_frame_equal(df, frame)

@pytest.mark.parametrize('ending', ['completes', 'interrupted'])
def test_variance_importance_draws_nothing(reg, ending):
    "A fit with `VarianceImportance` draws the same random numbers and ends with the same weights as one without it"
    def run(cbs):
        set_seed(5)
        dls = TabularDataLoaders.from_df(reg.df, procs=[Categorify, FillMissing, Normalize], cat_names=['grp', 'flag'],
                                         cont_names=['x1', 'x2', 'x3', 'cnt'], y_names='y', bs=64, valid_idx=list(range(240, 300)))
        learn = tabular_learner(dls, layers=[16, 8], metrics=rmse)
        with learn.no_bar(), learn.no_logging(), forwards(learn.model, 3 if ending=='interrupted' else None):
            try: learn.fit(2, 1e-2, cbs=cbs)
            except KeyboardInterrupt: pass
        return random_state(), learn.model.state_dict()
    (with_vi,w1),(without,w2) = run([VarianceImportance()]),run([])
    assert random_changes(with_vi, without) == []
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


# --- results and their plots -------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def results(reg):
    "One computed result of each kind"
    learn,df = reg.learn,reg.df
    vi = VarianceImportance()
    viann = train_reg(df, epochs=1)
    with viann.no_bar(), viann.no_logging(): viann.fit(2, 1e-2, cbs=vi)
    return SimpleNamespace(learn=learn, permutation=ENTRIES['permutation'](learn), prediction=ENTRIES['permutation_prediction'](learn),
                           correlation=ENTRIES['feature_correlation'](learn), dependence=ENTRIES['partial_dependence'](learn),
                           dependence_2d=ENTRIES['partial_dependence_2d'](learn), values=ENTRIES['value_importance'](learn),
                           values_prediction=learn.value_importance('grp', by='prediction', **quiet),
                           dropped=ENTRIES['drop_column'](learn), variance=vi, shap=ENTRIES['shap_values'](learn),
                           sage=ENTRIES['sage'](learn))

RANKED = ['permutation', 'prediction', 'values', 'dropped', 'variance', 'shap', 'sage']
KINDS = {'values': ('bar',), 'shap': ('bar', 'box', 'beeswarm')}  # what each ranked result draws; the others: bar and box
BAD_PLOTS = [
    ('top=-1',    dict(top=-1), ValueError, ['top', '-1']),
    ('top=0',     dict(top=0), ValueError, ['top', '0']),
    ('top=2.5',   dict(top=2.5), TypeError, ['top', '2.5']),
    ('top=True',  dict(top=True), TypeError, ['top', 'True']),
    ('kind=pie',  dict(kind='pie'), ValueError, ['kind', "'pie'"]),
]

@pytest.mark.parametrize('which', RANKED)
@pytest.mark.parametrize('case', BAD_PLOTS, ids=[c[0] for c in BAD_PLOTS])
def test_bad_plot(results, which, case):
    _,kwargs,exc,words = case
    assert_refused(lambda: getattr(results, which).plot(**kwargs), results.learn, exc, words)

@pytest.mark.parametrize('which,kwargs,exc,words', [
    ('correlation', dict(kind='pie'), ValueError, ['kind', "'pie'"]),
    ('dependence', dict(output='nope'), ValueError, ['output', "'nope'"]),
    ('dependence_2d', dict(output=5), ValueError, ['output', '5']),
], ids=['correlation-kind', 'dependence-output', 'dependence_2d-output'])
def test_bad_plot_other(results, which, kwargs, exc, words):
    assert_refused(lambda: getattr(results, which).plot(**kwargs), results.learn, exc, words)

@pytest.mark.parametrize('which', RANKED + ['correlation', 'dependence', 'dependence_2d'])
def test_plot_keeps_random_state(results, which):
    rng = random_state()
    getattr(results, which).plot()
    assert random_changes(rng, random_state()) == []
    plt.close('all')

def test_ranked_plot_shows_top(results):
    for which in RANKED:
        res = getattr(results, which)
        ax = res.plot(top=np.int64(2))
        assert len(ax.get_yticklabels()) == 2
    plt.close('all')

@pytest.mark.parametrize('which', RANKED + ['values_prediction'])
def test_one_plot_signature(results, which):
    "Every ranked result's `plot` takes `top` first and `kind` second; an unknown kind is answered with every kind it draws"
    res = getattr(results, which)
    assert list(inspect.signature(res.plot).parameters)[:2] == ['top', 'kind']
    assert len(res.plot(3).get_yticklabels()) == 3
    for kind in KINDS.get(which, ('bar', 'box')):
        assert len(res.plot(2, kind).get_yticklabels()) == 2
    with pytest.raises(ValueError) as info: res.plot(3, 'pie')
    for kind in KINDS.get(which, ('bar', 'box')): assert f"'{kind}'" in str(info.value), str(info.value)
    plt.close('all')

def test_boxes_of_rows_are_not_labelled_mean(results):
    "Per-row boxes show single rows' numbers: their axis does not say 'mean', the bars' does"
    for res in (results.prediction, results.values_prediction, results.shap):
        assert res.plot(kind='bar').get_xlabel().startswith('mean ')
        assert 'mean' not in res.plot(kind='box').get_xlabel()
    plt.close('all')

def test_beeswarm_and_waterfall_fit_their_labels(reg):
    "Long feature names are not cut when the beeswarm is saved; the waterfall's title names the row plainly"
    long = {c: f'{c} measured at the second visit, in standard units' for c in ['x1', 'x2', 'x3', 'cnt']}
    df = reg.df.rename(columns=long)
    learn = train_tabular(df, ['grp', 'flag'], list(long.values()), 'y', epochs=1, layers=(8,))
    sv = learn.shap_values(n_background=10, seed=0, **quiet)
    ax = sv.plot(kind='beeswarm')
    ax.figure.savefig(io.BytesIO(), format='png')  # draws with the saved file's renderer
    renderer = ax.figure.canvas.get_renderer()
    for label in ax.get_yticklabels():
        box = label.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= ax.figure.bbox.width, label.get_text()
    row = np.int64(sv.index[0])  # as an index read from an array gives it
    assert sv.waterfall(row).get_title() == f'row {int(row)}'
    plt.close('all')

def test_legends_do_not_cover_curves(results):
    "The legend of a plot with several outputs or types stands outside the axes"
    ax = results.permutation.plot()
    ax.figure.canvas.draw()
    legend, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= frame.x1
    plt.close('all')


@pytest.mark.parametrize('make', [
    lambda learn: PermutationImportance(learn, **quiet),
    lambda learn: PartialDependence(learn, 'x1', **quiet),
    lambda learn: ValueImportance(learn, 'grp', **quiet),
    lambda learn: DropColumnImportance(learn, fit_once, seeds=(0,), **quiet),
], ids=['permutation', 'dependence', 'values', 'dropped'])
def test_no_result_before_compute(reg, make):
    "A result exists only finished: building one from a learner says how to compute it, before any work"
    with pytest.raises(TypeError, match=r'compute\('): make(reg.learn)

def test_variance_importance_bad_parameters(reg):
    for kwargs,exc,word in [(dict(every='step'), ValueError, 'every'), (dict(every=1), ValueError, 'every'),
                            (dict(reduce='median'), ValueError, 'reduce'), (dict(view='pixels'), ValueError, 'view'),
                            (dict(keep='no'), TypeError, 'keep'), (dict(keep=1), TypeError, 'keep')]:
        with pytest.raises(exc) as info: VarianceImportance(**kwargs)
        assert names(str(info.value), word), str(info.value)
    vi = VarianceImportance()
    assert 'VarianceImportance' in repr(vi)
    with pytest.raises(ValueError): vi.plot()


# --- empty and one-row frames, untrained learners, more repeats than orders ---------------------------------------

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('n', [0, 1])
def test_too_few_rows(reg, name, n):
    "No row, or one where the method needs two: refused before any forward pass, with the count and what the rows are for"
    if name.startswith(('shap_values', 'shap_interactions')) and n == 1: pytest.skip('one row is explained: see test_shap_values_of_one_row')
    frame = reg.df.iloc[:n]
    assert_refused(lambda: ENTRIES[name](reg.learn, df=frame), reg.learn, ValueError, ['rows', str(n)], frame)
    with pytest.raises(ValueError) as info: ENTRIES[name](reg.learn, df=frame)
    if name not in PERMUTATION + ['drop_column']: assert 'perturb' not in str(info.value), str(info.value)

def test_shap_values_of_one_row(reg):
    "Explaining a single prediction is legitimate: its values add up from the base value to its prediction"
    sv = ENTRIES['shap_values'](reg.learn, df=reg.df.iloc[[7]])
    assert list(sv.index) == [7]
    assert sv.values.loc[7].sum() == pytest.approx(sv.predictions[7] - sv.base_value, abs=1e-4)

UNTRAINED_WARNED = ['permutation', 'partial_dependence', 'value_importance', 'shap_values', 'sage', 'ale', 'interaction_strength']

@pytest.mark.parametrize('name', UNTRAINED_WARNED)
def test_untrained_learner_warns(reg, name):
    "A learner that never saw a training batch would be explained from its random weights: a UserWarning says so"
    fresh = tabular_learner(reg.learn.dls, layers=[8], metrics=rmse)
    with pytest.warns(UserWarning, match='never trained'): ENTRIES[name](fresh)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ENTRIES[name](reg.learn)
    assert not [w for w in caught if 'never trained' in str(w.message)]

def test_more_repeats_than_orders_warns(reg):
    "Five rows have 120 orders: more repeats only repeat shuffles, and a UserWarning says so"
    five = reg.df.iloc[:5]
    with pytest.warns(UserWarning, match='120 different orders'):
        reg.learn.permutation_importance(df=five, n_repeats=200, seed=0, **quiet)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        reg.learn.permutation_importance(df=five, n_repeats=100, seed=0, **quiet)
    assert not [w for w in caught if 'different orders' in str(w.message)]
