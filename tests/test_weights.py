"Sample weights: weighted scores against hand computation, equal weights bit for bit, integer weights as repeated rows, bad weights"

import math
import numpy as np, pandas as pd, pytest, torch
import sklearn.metrics as skm
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import train_tabular


def reg_df(n=400, seed=0):
    "Regression with a column of weights the model does not read"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'x1': rng.normal(size=n), 'x2': rng.normal(size=n), 'g': rng.choice(list('abc'), n)})
    df['y'] = df.x1 + 2*df.x1*df.x2 + (df.g=='a') + 0.1*rng.normal(size=n)
    df['w'] = rng.integers(0, 4, n).astype(float)
    return df


def clf_df(n=400, seed=1, classes=('no', 'yes')):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n), 'k': rng.choice(list('uv'), n)})
    logit = 2*df.a + (df.k=='u') - 0.5*df.b
    if len(classes)==2: df['label'] = np.where(rng.random(n) < 1/(1+np.exp(-logit)), *classes[::-1])
    else: df['label'] = np.array(classes)[np.digitize(logit + rng.normal(size=n), [-1, 1])]
    df['w'] = rng.integers(0, 4, n).astype(float)
    return df


@pytest.fixture(scope='module')
def reg():
    df = reg_df()
    learn = train_tabular(df, ['g'], ['x1', 'x2'], 'y', metrics=[rmse, mae, mse, R2Score(), exp_rmspe, ExplainedVariance()], epochs=3, layers=(16,))
    return learn, df.iloc[-80:].reset_index(drop=True)


@pytest.fixture(scope='module')
def clf():
    df = clf_df()
    learn = train_tabular(df, ['k'], ['a', 'b'], 'label', y_block=CategoryBlock(), epochs=3, layers=(16,),
                          metrics=[accuracy, error_rate, RocAucBinary(), F1Score(), Precision(), Recall(), BalancedAccuracy(), MatthewsCorrCoef(),
                                   FBeta(2), Jaccard(), CohenKappa(), HammingLoss()])
    return learn, df.iloc[-80:].reset_index(drop=True)


@pytest.fixture(scope='module')
def multi():
    df = clf_df(classes=('lo', 'mid', 'hi'))
    learn = train_tabular(df, ['k'], ['a', 'b'], 'label', y_block=CategoryBlock(), epochs=3, layers=(16,),
                          metrics=[accuracy, RocAuc(), F1Score(average='macro'), Precision(average='weighted'), Recall(average='micro')])
    return learn, df.iloc[-80:].reset_index(drop=True)


def baselines(learn, df, **kw):
    "Every metric's (weighted) score of the unperturbed `df`"
    return learn.permutation_importance(df=df, metric='all', n_repeats=1, seed=0, show_progress=False, **kw).baseline


def preds_of(learn, df):
    "Activated predictions, targets and per-row losses, from fastai's own `get_preds`"
    p,t,l = learn.get_preds(dl=learn.dls.test_dl(df), with_loss=True)
    return p.double().numpy(),t.numpy().reshape(len(p), -1).squeeze(1) if t.ndim > 1 and t.shape[1]==1 else t.numpy(),l.double().numpy()


def test_regression_by_hand(reg):
    learn, df = reg
    w = df.w.to_numpy()
    got = baselines(learn, df, sample_weight='w')
    p,t,l = preds_of(learn, df)
    p,t = p.ravel(),t.ravel()
    want = {'loss': np.average(l, weights=w), 'rmse': math.sqrt(np.average((p-t)**2, weights=w)), 'mae': np.average(abs(p-t), weights=w),
            'mse': np.average((p-t)**2, weights=w), 'r2_score': skm.r2_score(t, p, sample_weight=w),
            'exp_rmspe': math.sqrt(np.average(((np.exp(t)-np.exp(p))/np.exp(t))**2, weights=w)),
            'explained_variance_score': skm.explained_variance_score(t, p, sample_weight=w)}
    assert set(got) == set(want)
    for k in want: assert got[k] == pytest.approx(want[k], rel=1e-5), k
    assert got['rmse'] != pytest.approx(baselines(learn, df)['rmse'], rel=1e-3)  # the weights change the score


def test_binary_by_hand(clf):
    learn, df = clf
    w = df.w.to_numpy()
    got = baselines(learn, df, sample_weight='w')
    p,t,l = preds_of(learn, df)
    hard = p.argmax(1)
    want = {'loss': np.average(l, weights=w), 'accuracy': np.average(hard==t, weights=w), 'error_rate': 1 - np.average(hard==t, weights=w),
            'roc_auc_score': skm.roc_auc_score(t, p[:, 1], sample_weight=w), 'f1_score': skm.f1_score(t, hard, sample_weight=w),
            'precision_score': skm.precision_score(t, hard, sample_weight=w), 'recall_score': skm.recall_score(t, hard, sample_weight=w),
            'balanced_accuracy_score': skm.balanced_accuracy_score(t, hard, sample_weight=w),
            'matthews_corrcoef': skm.matthews_corrcoef(t, hard, sample_weight=w), 'fbeta_score': skm.fbeta_score(t, hard, beta=2, sample_weight=w),
            'jaccard_score': skm.jaccard_score(t, hard, sample_weight=w), 'cohen_kappa_score': skm.cohen_kappa_score(t, hard, sample_weight=w),
            'hamming_loss': skm.hamming_loss(t, hard, sample_weight=w)}
    assert set(got) == set(want)
    for k in want: assert got[k] == pytest.approx(want[k], rel=1e-5), k


def test_multiclass_by_hand(multi):
    learn, df = multi
    w = df.w.to_numpy()
    got = baselines(learn, df, sample_weight=w)
    p,t,_ = preds_of(learn, df)
    hard = p.argmax(1)
    assert got['roc_auc_score'] == pytest.approx(skm.roc_auc_score(t, p, multi_class='ovr', sample_weight=w), rel=1e-5)
    assert got['f1_score'] == pytest.approx(skm.f1_score(t, hard, average='macro', sample_weight=w), rel=1e-5)
    assert got['precision_score'] == pytest.approx(skm.precision_score(t, hard, average='weighted', sample_weight=w), rel=1e-5)
    assert got['recall_score'] == pytest.approx(skm.recall_score(t, hard, average='micro', sample_weight=w), rel=1e-5)


def test_prediction_deviation_by_hand(reg):
    "By prediction: a feature's importance is the weighted mean of its rows' deviations"
    learn, df = reg
    pi = learn.permutation_importance(df=df.drop(columns='y'), by='prediction', sample_weight='w', n_repeats=1, seed=0, show_progress=False)
    for f,imp in zip(pi.results.feature, pi.results.importance):
        assert imp == pytest.approx(np.average(pi.deviations[f], weights=df.w), rel=1e-6)


def test_partial_dependence_by_hand(reg):
    learn, df = reg
    pd_ = learn.partial_dependence('x1', df=df, values=[-1., 0.5], sample_weight='w', show_progress=False)
    for v,got in zip(pd_.results.x1, pd_.results.y):
        p,_,_ = preds_of(learn, df.assign(x1=v))
        assert got == pytest.approx(np.average(p.ravel(), weights=df.w), rel=1e-5)


def test_equal_weights_bit_for_bit(reg, clf):
    "Weights all one (or all equal) give exactly the unweighted numbers, for every entry point"
    learn, df = clf
    ones,twos = np.ones(len(df)),np.full(len(df), 2.)
    for kw in (dict(metric='all'), dict(by='prediction'), dict(metric='all', max_rows=50)):
        plain = learn.permutation_importance(df=df, n_repeats=2, seed=1, show_progress=False, **kw)
        for w in (ones, twos):
            same = learn.permutation_importance(df=df, n_repeats=2, seed=1, show_progress=False, sample_weight=w, **kw)
            assert np.array_equal(plain.scores, same.scores) and plain.results.equals(same.results)
    learn, df = reg
    ones = np.ones(len(df))
    a,b = [learn.partial_dependence('x2', df=df, show_progress=False, sample_weight=w) for w in (None, ones)]
    assert a.results.equals(b.results)
    a,b = [learn.value_importance('g', df=df, show_progress=False, sample_weight=w) for w in (None, ones)]
    assert a.results.equals(b.results)
    a,b = [learn.shap_values(df=df, background=df, seed=0, show_progress=False, sample_weight=w) for w in (None, ones)]
    assert a.results.equals(b.results)
    a,b = [learn.sage_importance(df=df, background=df, seed=0, n_permutations=200, show_progress=False, sample_weight=w) for w in (None, ones)]
    assert a.results.equals(b.results) and np.array_equal(a.scores, b.scores)


def test_integer_weights_repeat_rows(reg, clf):
    "Integer weights give the numbers of the data with each row repeated that many times"
    for learn,df in (reg, clf):
        repeated = df.loc[df.index.repeat(df.w.astype(int))].reset_index(drop=True)
        got,want = baselines(learn, df, sample_weight='w'),baselines(learn, repeated)
        for k in want: assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-7), k
    learn, df = reg
    repeated = df.loc[df.index.repeat(df.w.astype(int))].reset_index(drop=True)
    a,b = learn.partial_dependence('x1', df=df, sample_weight='w', show_progress=False),learn.partial_dependence('x1', df=repeated, values=None, show_progress=False)
    b = learn.partial_dependence('x1', df=repeated, values=list(a.results.x1), show_progress=False)
    assert np.allclose(a.results.y, b.results.y, rtol=1e-5)
    a,b = learn.value_importance('g', df=df, sample_weight='w', show_progress=False),learn.value_importance('g', df=repeated, show_progress=False)
    assert np.allclose(a.results.set_index('value').score, b.results.set_index('value').score, rtol=1e-5)
    a = learn.shap_values(df=df, background=df, seed=0, sample_weight='w', show_progress=False)
    b = learn.shap_values(df=repeated, background=df, seed=0, show_progress=False)
    assert np.allclose(a.results.set_index('feature').importance, b.results.set_index('feature').importance.loc[a.results.feature], rtol=1e-6)


def test_sage_zero_weights_leave_rows_out(reg):
    "SAGE with weights of zero and one visits only the rows weighing one, as if the others were not there"
    learn, df = reg
    w = (df.w > 0).astype(float)
    a = learn.sage_importance(df=df, background=df, sample_weight=w.to_numpy(), seed=0, n_permutations=400, show_progress=False)
    b = learn.sage_importance(df=df[w > 0], background=df, seed=0, n_permutations=400, show_progress=False)
    assert a.results.feature.tolist() == b.results.feature.tolist()
    assert np.allclose(a.results.importance, b.results.importance, rtol=1e-6, atol=1e-9)
    assert np.allclose(a.results.std_error, b.results.std_error, rtol=1e-6, atol=1e-9)


def test_no_weighted_form(reg):
    learn, df = reg
    with pytest.raises(ValueError, match="has no weighted form.*R2Score"):
        learn.permutation_importance(df=df, metric=PearsonCorrCoef(), sample_weight='w', show_progress=False)
    learn.permutation_importance(df=df, metric=PearsonCorrCoef(), n_repeats=1, show_progress=False)  # unweighted: fine


class Counted:
    "Counts the forward passes of a model"
    def __init__(self, model): self.n = 0; self.handle = model.register_forward_pre_hook(self)
    def __call__(self, *args): self.n += 1


def test_loss_without_rows_refused(reg):
    "A loss that cannot be unreduced is refused before the model runs, naming the fix"
    learn, df = reg
    loss,counted = learn.loss_func,Counted(learn.model)
    learn.loss_func = lambda out, y: ((out - y)**2).mean()
    try:
        with pytest.raises(TypeError, match='gives no loss per row'):
            learn.permutation_importance(df=df, metric='loss', sample_weight='w', show_progress=False)
    finally: learn.loss_func = loss; counted.handle.remove()
    assert counted.n == 0


@pytest.mark.parametrize('bad,says', [(-1, 'negative'), (np.nan, 'NaN'), (0, 'zero for every row'), ('short', '79 weights for 80 rows'),
                                      ('nope', "names column 'nope'"), ('x1', 'a feature of the learner'), ('y', 'a label of the learner')])
def test_bad_weights_refused_before_work(reg, bad, says):
    learn, df = reg
    w = np.ones(79) if bad=='short' else bad if isinstance(bad, str) else np.r_[np.ones(len(df)-1), bad] if bad != 0 else np.zeros(len(df))
    fits = []
    calls = [lambda: learn.permutation_importance(df=df, sample_weight=w, show_progress=False),
             lambda: learn.permutation_importance(df=df, by='prediction', sample_weight=w, show_progress=False),
             lambda: learn.partial_dependence('x1', df=df, sample_weight=w, show_progress=False),
             lambda: learn.value_importance('g', df=df, sample_weight=w, show_progress=False),
             lambda: learn.drop_column_importance(lambda l: fits.append(1), df=df, sample_weight=w, show_progress=False),
             lambda: learn.shap_values(df=df, sample_weight=w, show_progress=False),
             lambda: learn.sage_importance(df=df, sample_weight=w, show_progress=False)]
    counted = Counted(learn.model)
    try:
        for call in calls:
            with pytest.raises(ValueError, match=r'`sample_weight`') as e: call()
            assert says in str(e.value)
    finally: counted.handle.remove()
    assert counted.n == 0 and not fits


def test_nothing_changes(reg):
    "The frame, the learner and the global random state are as they were"
    learn, df = reg
    before,state = df.copy(),{k: v.clone() for k,v in learn.model.state_dict().items()}
    torch.manual_seed(5); np.random.seed(5)
    t,n = torch.get_rng_state(),np.random.get_state()[1].copy()
    learn.permutation_importance(df=df, sample_weight='w', n_repeats=2, show_progress=False)
    learn.shap_values(df=df, sample_weight='w', show_progress=False, max_evals=40)
    with pytest.raises(ValueError): learn.permutation_importance(df=df, metric=PearsonCorrCoef(), sample_weight='w', show_progress=False)
    assert df.equals(before) and torch.equal(torch.get_rng_state(), t) and np.array_equal(np.random.get_state()[1], n)
    assert all(torch.equal(v, state[k]) for k,v in learn.model.state_dict().items())
    assert 'w' not in learn.permutation_importance(df=df, sample_weight='w', n_repeats=1, show_progress=False).results.feature.tolist()
