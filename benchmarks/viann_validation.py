"""VIANN validation: do `VarianceImportance` scores agree with a random forest and with permutation importance?

On scikit-learn's bundled datasets (no download) a small fastai tabular network is trained with the callback;
the Pearson correlation of its scores with a RandomForest's `feature_importances_` (what the paper reports,
C. R. de Sá, Discovery Science 2019) and with this package's permutation importance is printed as a markdown
table, mean ± sd over seeds, next to the paper's figure for its ReLU network.

    python benchmarks/viann_validation.py [--seeds 3] [--datasets iris wine ...]
"""
import argparse, time, warnings
import numpy as np, pandas as pd, torch
from scipy.stats import pearsonr
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from fastai.tabular.all import *
from fastai_featimp.all import *

PAPER = {'iris': 0.87, 'wine': 0.50, 'breast_cancer': 0.76, 'diabetes': 0.90, 'digits': 0.76}

# One setting for every dataset, close to the paper's plain ReLU network (no BatchNorm between layers, a strong
# weight decay like its l2(0.01)) but trained the fastai way: Adam and a one-cycle schedule.
CONFIG = dict(layers=[64, 32], use_bn=False, wd=0.1, epochs=30, lr=1e-2, bs=32)
# fastai's defaults for comparison: BatchNorm after each linear layer, default weight decay.
DEFAULTS = dict(CONFIG, use_bn=True, wd=None)


def load(name):
    "A bundled scikit-learn dataset as a DataFrame, its feature names, and whether it is a classification"
    ds = getattr(datasets, f'load_{name}')(as_frame=True)
    df = ds.frame.rename(columns=lambda c: c.replace(' ', '_'))
    conts = [c.replace(' ', '_') for c in ds.feature_names]
    classification = name != 'diabetes'
    if classification: df['target'] = df.target.astype(str)
    else: df['target'] = (df.target - df.target.mean())/df.target.std()
    return df, conts, classification


def train(df, conts, classification, valid_idx, seed, config):
    "A tabular learner trained with `VarianceImportance`"
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=conts, y_names='target',
                                     y_block=CategoryBlock() if classification else RegressionBlock(),
                                     valid_idx=list(valid_idx), bs=config['bs'])
    set_seed(seed, reproducible=True)
    learn = tabular_learner(dls, layers=config['layers'], config=tabular_config(use_bn=config['use_bn']),
                            wd=config['wd'], metrics=accuracy if classification else rmse, cbs=VarianceImportance())
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(config['epochs'], config['lr'])
    return learn


def by_feature(result, conts):
    "A result's importances in the order of `conts`"
    return result.results.set_index('feature').importance[conts].to_numpy()


def evaluate(name, seed):
    "Correlations of VIANN with the forest and with permutation importance, on one dataset and seed"
    df, conts, classification = load(name)
    valid_idx = np.random.default_rng(seed).permutation(len(df))[:len(df)//5]
    train_rows = df.drop(index=valid_idx)
    forest = (RandomForestClassifier if classification else RandomForestRegressor)(n_estimators=100, random_state=seed)
    rf = forest.fit(train_rows[conts], train_rows.target).feature_importances_
    learn = train(df, conts, classification, valid_idx, seed, CONFIG)
    viann = by_feature(learn.variance_importance, conts)
    perm = by_feature(learn.permutation_importance(metric='loss', n_repeats=5, seed=seed, show_progress=False), conts)
    with learn.no_bar(): score = learn.validate()[1]
    default = by_feature(train(df, conts, classification, valid_idx, seed, DEFAULTS).variance_importance, conts)
    return dict(dataset=name, features=len(conts), viann_rf=pearsonr(viann, rf)[0], viann_perm=pearsonr(viann, perm)[0],
                perm_rf=pearsonr(perm, rf)[0], defaults_rf=pearsonr(default, rf)[0], valid=score)


def run(names=tuple(PAPER), seeds=3):
    "One row per dataset and seed"
    return pd.DataFrame([evaluate(n, s) for n in names for s in range(seeds)])


def table(runs):
    "A markdown table of the mean ± sd over seeds of each figure"
    def cell(v): return f'{v.mean():.2f} ± {v.std(ddof=1):.2f}' if len(v) > 1 else f'{v.mean():.2f}'
    head = ['dataset', 'features', 'VIANN ~ RF', 'VIANN ~ permutation', 'permutation ~ RF',
            'VIANN ~ RF, fastai defaults', 'paper: VIANN ~ RF', 'valid accuracy / rmse']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)]
    for name, g in runs.groupby('dataset', sort=False):
        row = [name, str(g.features.iloc[0]), cell(g.viann_rf), cell(g.viann_perm), cell(g.perm_rf),
               cell(g.defaults_rf), f'{PAPER[name]:.2f}', cell(g.valid)]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--datasets', nargs='+', default=list(PAPER), choices=list(PAPER))
    parser.add_argument('--threads', type=int, default=1, help='torch threads (one is fastest on a busy machine)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    start = time.perf_counter()
    runs = run(args.datasets, args.seeds)
    print(f'Pearson correlation of importances, mean ± sd over {args.seeds} seed(s); network {CONFIG}\n')
    print(table(runs))
    print(f'\n{time.perf_counter() - start:.0f} s')
