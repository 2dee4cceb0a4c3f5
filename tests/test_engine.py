"The batched engine: fused scoring equals `learn.validate` on the perturbed data, all metrics in one run, row subsampling"
import numpy as np, pandas as pd, pytest, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from fastai_featimp import engine
from conftest import classification_df, ground_truth_df, train_tabular


def perturbed_tensors(data, perturbation):
    "The whole data under `perturbation`, built directly (not through the evaluator's batches)"
    cats, conts = data.cats.clone(), data.conts.clone()
    perturbation(data, slice(0, data.n), cats, conts)
    return cats, conts


def validate_on(learn, metrics, cats, conts, ys, bs=100):
    "`learn.validate` with `metrics` on plain batches of the given tensors"
    old = learn.metrics
    learn.metrics = metrics
    try:
        with learn.no_bar(), learn.no_logging():
            batches = [(cats[i:i+bs], conts[i:i+bs], *[y[i:i+bs] for y in ys]) for i in range(0, len(cats), bs)]
            return learn.validate(dl=batches)
    finally: learn.metrics = old


def check_fused_equals_validate(learn, metrics):
    "Several perturbations evaluated in fused batches of 317 rows, against `validate` on each perturbed data set"
    eng = Engine(learn, bs=317)  # 600 rows: each perturbation's rows span two fused batches, and batches mix perturbations
    assert eng.data.n == 600
    units = eng.units()
    gen = torch.Generator().manual_seed(0)
    perturbations = [Identity(), *[Permute(u, eng.permutation(gen)) for u in units], eng.neutral(units[0])]
    scorer = MetricScorer(learn, ['loss', *metrics])
    answers = eng.evaluate(perturbations, scorer)
    for p, got in zip(perturbations, answers):
        expected = validate_on(learn, [mk_metric(m) if not isinstance(m, Metric) else m for m in metrics],
                               *perturbed_tensors(eng.data, p), eng.data.ys)
        np.testing.assert_allclose(got, np.asarray(expected, dtype=float), rtol=2e-5, atol=1e-6)
    return answers


def test_fused_classification_metrics(classification):
    learn, _ = classification
    answers = check_fused_equals_validate(learn, [accuracy, RocAucBinary(), F1Score()])
    assert answers[1][2] < answers[0][2]  # shuffling `a` lowers the AUC


def test_fused_regression_metrics(regression):
    learn, _ = regression
    answers = check_fused_equals_validate(learn, [rmse, R2Score()])
    assert answers[1][1] > answers[0][1]  # shuffling `x1` raises the rmse


def test_all_metrics_equal_separate_runs(classification):
    learn, _ = classification
    q = dict(n_repeats=2, seed=3, show_progress=False)
    together = learn.permutation_importance(metric='all', **q)
    assert list(dict.fromkeys(together.results.metric)) == ['loss', 'accuracy', 'roc_auc_score']
    for name in ('loss', 'accuracy', 'roc_auc_score'):
        alone = learn.permutation_importance(metric=name, **q).results.set_index('feature')
        block = together.results[together.results.metric == name].set_index('feature')
        np.testing.assert_allclose(block.loc[alone.index, 'importance'], alone.importance, rtol=1e-6, atol=1e-9)
        together.plot(metric=name)
    with pytest.raises(ValueError, match="unknown `metric` 'f1'"): together.plot(metric='f1')
    assert together.scores.shape == (3*4, 2)


def test_max_rows_reproducible(regression):
    learn, _ = regression
    q = dict(n_repeats=3, show_progress=False)
    a = learn.permutation_importance(max_rows=200, seed=1, **q)
    b = learn.permutation_importance(max_rows=200, seed=1, **q)
    c = learn.permutation_importance(max_rows=200, seed=2, **q)
    assert np.array_equal(a.scores, b.scores) and not np.array_equal(a.scores, c.scores)
    half = learn.permutation_importance(max_rows=0.5, seed=1, **q)
    full = learn.permutation_importance(seed=1, **q)
    assert half.results.feature[0] == full.results.feature[0] == 'x1'
    # a subsample scores with more spread across repeats than the full data, for the strongest feature
    assert a.results.set_index('feature').loc['x1', 'std'] > 0
    with pytest.raises(TypeError, match='max_rows'): learn.permutation_importance(max_rows='half', **q)
    pred = learn.permutation_importance(max_rows=100, seed=0, by='prediction', **q)
    drawn = pred.deviations.notna().all(axis=1)  # rows no repeat drew have no deviation: NaN, not a made-up zero
    assert pred.deviations.shape == (600, 6) and 100 <= drawn.sum() <= 300
    assert (pred.deviations.notna().sum(axis=1).isin([0, 6])).all()


@pytest.mark.parametrize('source', ['valid', 'test_dl', 'test_dl without labels'])
def test_whole_data_read_at_once_equals_its_batches(classification, source):
    "A plain tabular dataloader is read as one batch of all its rows: the same tensors its own batches give, in order"
    learn, df = classification
    rows = df.iloc[::7]
    dl = dict(valid=learn.dls.valid, test_dl=learn.dls.test_dl(rows),
              **{'test_dl without labels': learn.dls.test_dl(rows.drop(columns='label'))})[source]
    assert engine._reads_whole(dl)  # the fast path is the one under test
    data = TabularTensors.from_dl(dl)
    batches = list(dl.new(bs=97, shuffle=False, drop_last=False))
    expected = [torch.cat(p) for p in zip(*batches)]
    assert len(expected) == 2 + len(data.ys) and len(data.ys) == (0 if 'without' in source else 1)
    for got, want in zip([data.cats, data.conts, *data.ys], expected):
        assert type(got) is torch.Tensor and got.dtype == want.dtype
        torch.testing.assert_close(got, want.as_subclass(torch.Tensor), rtol=0, atol=0)
    assert data.n == len(dl.dataset) and data.index.equals(dl.dataset.items.index)


def test_association_computed_once(regression, monkeypatch):
    "`groups='auto'` with `conditional=True` measures the association of the columns once, given or not"
    calls = []
    def counted(*args): calls.append(1); return association_matrix(*args)
    monkeypatch.setattr(engine, 'association_matrix', counted)
    learn, _ = regression
    learn.permutation_importance(groups='auto', conditional=True, n_repeats=1, seed=0, show_progress=False)
    assert len(calls) == 1
    eng = Engine(learn)
    columns = eng.association()
    eng.unit_association(eng.units(), columns); eng.units('auto', columns=columns); eng.association()
    assert len(calls) == 2  # one more engine, one more measure
