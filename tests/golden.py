"""The numbers every method gave before the batched engine, on fixed seeds: `python tests/golden.py` records them
in `tests/golden.json`; `test_golden.py` checks that today's code still gives them, to float rounding."""
import json, sys
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, str(Path(__file__).parent))
from fastai.tabular.all import *
from fastai_featimp.all import *
from conftest import classification_df, ground_truth_df, train_tabular

here = Path(__file__).parent


def learners():
    "The two small learners the goldens are computed on"
    torch.set_num_threads(1)
    reg_df = ground_truth_df()
    reg = train_tabular(reg_df, ['grp'], ['x1', 'x3', 'x4', 'noise1', 'noise2'], 'y', metrics=rmse)
    cls_df = classification_df()
    cls = train_tabular(cls_df, ['kind'], ['a', 'b', 'junk'], 'label', y_block=CategoryBlock(),
                        metrics=[accuracy, RocAucBinary()])
    return reg, reg_df, cls, cls_df


def table(res, cols):
    "The columns `cols` of a result table as plain lists, keyed by feature/value"
    return {c: [v if isinstance(v, str) else float(v) for v in res[c]] for c in cols}


def compute():
    "Every method's numbers on the golden learners"
    reg, reg_df, cls, cls_df = learners()
    q = dict(show_progress=False)
    out = {}
    pi = reg.permutation_importance(n_repeats=3, seed=0, **q)
    out['perm_metric'] = table(pi.results, ['feature', 'importance', 'std'])
    pi = reg.permutation_importance(n_repeats=2, seed=1, metric='loss', **q)
    out['perm_loss'] = table(pi.results, ['feature', 'importance'])
    pi = cls.permutation_importance(n_repeats=2, seed=0, metric='roc_auc_score', **q)
    out['perm_auc'] = table(pi.results, ['feature', 'importance'])
    pi = reg.permutation_importance(n_repeats=2, seed=2, by='prediction', **q)
    out['perm_prediction'] = table(pi.results, ['feature', 'importance'])
    pi = cls.permutation_importance(n_repeats=2, seed=2, by='prediction', **q)
    out['perm_prediction_cls'] = table(pi.results, ['feature', 'importance'])
    pi = reg.permutation_importance(n_repeats=2, seed=3, groups={'pair': ['x4', 'noise1']}, **q)
    out['perm_groups'] = table(pi.results, ['feature', 'importance'])
    pi = reg.permutation_importance(n_repeats=2, seed=4, groups='auto', threshold=0.05, **q)
    out['perm_auto'] = table(pi.results, ['feature', 'importance'])
    pi = reg.permutation_importance(n_repeats=2, seed=5, conditional=True, min_association=0.01, **q)
    out['perm_conditional'] = table(pi.results, ['feature', 'importance'])
    pd1 = reg.partial_dependence('x1', n_points=5, ice=10, seed=0, **q)
    out['pd_1d'] = table(pd1.results, ['x1', 'y'])
    out['pd_ice'] = table(pd1.ice, ['y'])
    pd2 = cls.partial_dependence(['a', 'kind'], n_points=4, **q)
    out['pd_2d'] = table(pd2.results, ['a', 'no', 'yes'])
    vi = reg.value_importance('grp', **q)
    out['value_metric'] = table(vi.results.astype({'value': str}), ['value', 'effect'])
    vi = cls.value_importance('kind', by='prediction', **q)
    out['value_prediction'] = table(vi.results.astype({'value': str}), ['value', 'effect'])
    dc = reg.drop_column_importance(lambda l: l.fit_one_cycle(2, 1e-2), seeds=[0], **q)
    out['dropcolumn'] = table(dc.results, ['feature', 'importance'])
    return out


if __name__ == '__main__':
    (here/'golden.json').write_text(json.dumps(compute(), indent=1))
