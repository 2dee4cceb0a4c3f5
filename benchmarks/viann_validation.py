"""VIANN validation: do `VarianceImportance` scores agree with a random forest and with permutation importance?

On scikit-learn's bundled datasets (no download) a fastai tabular network is trained with the callback; the
Pearson correlation of its scores with a RandomForest's `feature_importances_` (what the paper reports,
C. R. de Sá, Discovery Science 2019) and with this package's permutation importance is printed as a markdown
table, mean ± sd over seeds, next to the paper's figure for its ReLU network. Two training protocols:

- `paper`: the paper's experiment as its public code runs it (repository rebelosa/feature-importance-neural-networks):
  layers 50-100-50 with ReLU, no BatchNorm between them, weights drawn from N(0, 0.05²) and zero biases, an L2
  penalty of 0.01 (weight decay 0.02), SGD at a constant learning rate of 0.01, batches of a seventh of the
  training rows; a classifier stops once its validation accuracy passes 0.95 after epoch 5 (at most 300 epochs),
  a regressor trains 100 epochs. One change: momentum 0.9, without which digits does not learn in 300 epochs;
- `one-cycle`: the fastai way, one setting for every dataset: layers [64, 32], no BatchNorm between them,
  weight decay 0.1, Adam and `fit_one_cycle(30, 1e-2)`, batches of 32.

    python benchmarks/viann_validation.py [--seeds 3] [--datasets iris wine ...]

The table is printed and written to `benchmarks/results/viann_validation.md`.
"""
import argparse, time, warnings
from functools import partial
from pathlib import Path
import numpy as np, pandas as pd, torch
from scipy.stats import pearsonr
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from fastai.tabular.all import *
from fastai_featimp.all import *

PAPER = {'iris': 0.87, 'wine': 0.50, 'breast_cancer': 0.76, 'diabetes': 0.90, 'digits': 0.76}
PROTOCOLS = {
    'paper': dict(layers=[50, 100, 50], wd=0.02, opt_func=partial(SGD, mom=0.9), lr=1e-2, bs=None, init_sd=0.05,
                  schedule='constant', epochs=300, regression_epochs=100, stop_at_accuracy=0.95),
    'one-cycle': dict(layers=[64, 32], wd=0.1, opt_func=Adam, lr=1e-2, bs=32, init_sd=None,
                      schedule='one_cycle', epochs=30, regression_epochs=30, stop_at_accuracy=None)}


class StopAtAccuracy(Callback):
    "Stop training once the validation accuracy passes `threshold` after `min_epochs` (the paper's stopping rule)"
    order = 100
    def __init__(self, threshold=0.95, min_epochs=5): store_attr()
    def after_epoch(self):
        if self.epoch > self.min_epochs and self.recorder.values[-1][2] > self.threshold: raise CancelFitException()


def normal_init(model, sd):
    "Draw the weights of every linear layer of `model` from N(0, `sd`²) and set its biases to zero, as Keras' 'normal'"
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, sd)
            if m.bias is not None: nn.init.zeros_(m.bias)


def load(name):
    "A bundled scikit-learn dataset as a DataFrame, its feature names, and whether it is a classification"
    ds = getattr(datasets, f'load_{name}')(as_frame=True)
    df = ds.frame.rename(columns=lambda c: c.replace(' ', '_'))
    conts = [c.replace(' ', '_') for c in ds.feature_names]
    classification = name != 'diabetes'
    if classification: df['target'] = df.target.astype(str)
    else: df['target'] = (df.target - df.target.mean())/df.target.std()
    return df, conts, classification


def train(df, conts, classification, valid_idx, seed, protocol):
    "A tabular learner trained with `VarianceImportance` by `protocol`"
    p = PROTOCOLS[protocol]
    bs = p['bs'] or round((len(df) - len(valid_idx))/7)
    dls = TabularDataLoaders.from_df(df, procs=[Normalize], cont_names=conts, y_names='target',
                                     y_block=CategoryBlock() if classification else RegressionBlock(),
                                     valid_idx=list(valid_idx), bs=bs)
    set_seed(seed, reproducible=True)
    learn = tabular_learner(dls, layers=p['layers'], config=tabular_config(use_bn=False), wd=p['wd'],
                            opt_func=p['opt_func'], metrics=accuracy if classification else rmse, cbs=VarianceImportance())
    if p['init_sd']: normal_init(learn.model, p['init_sd'])
    epochs = p['epochs'] if classification else p['regression_epochs']
    stop = [StopAtAccuracy(p['stop_at_accuracy'])] if classification and p['stop_at_accuracy'] else []
    with learn.no_bar(), learn.no_logging():
        if p['schedule'] == 'one_cycle': learn.fit_one_cycle(epochs, p['lr'], cbs=stop)
        else: learn.fit(epochs, p['lr'], cbs=stop)
    return learn


def by_feature(result, conts):
    "A result's importances in the order of `conts`"
    return result.results.set_index('feature').importance[conts].to_numpy()


def evaluate(name, seed, protocol):
    "Correlations of VIANN with the forest and with permutation importance, on one dataset, seed and protocol"
    df, conts, classification = load(name)
    valid_idx = np.random.default_rng(seed).permutation(len(df))[:len(df)//5]
    train_rows = df.drop(index=valid_idx)
    forest = (RandomForestClassifier if classification else RandomForestRegressor)(n_estimators=100, random_state=seed)
    rf = forest.fit(train_rows[conts], train_rows.target).feature_importances_
    learn = train(df, conts, classification, valid_idx, seed, protocol)
    viann = by_feature(learn.variance_importance, conts)
    perm = by_feature(learn.permutation_importance(metric='loss', n_repeats=5, seed=seed, show_progress=False), conts)
    with learn.no_bar(): score = learn.validate()[1]
    return dict(dataset=name, protocol=protocol, features=len(conts), epochs=learn.variance_importance.n_samples - 1,
                viann_rf=pearsonr(viann, rf)[0], viann_perm=pearsonr(viann, perm)[0], perm_rf=pearsonr(perm, rf)[0],
                valid=score)


def run(names=tuple(PAPER), seeds=3, protocols=tuple(PROTOCOLS)):
    "One row per dataset, protocol and seed"
    return pd.DataFrame([evaluate(n, s, p) for n in names for p in protocols for s in range(seeds)])


def table(runs):
    "A markdown table of the mean ± sd over seeds of each figure, a row per dataset and protocol"
    def cell(v): return f'{v.mean():.2f} ± {v.std(ddof=1):.2f}' if len(v) > 1 else f'{v.mean():.2f}'
    head = ['dataset', 'features', 'protocol', 'epochs', 'VIANN ~ RF', 'paper: VIANN ~ RF', 'VIANN ~ permutation',
            'permutation ~ RF', 'valid accuracy / rmse']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|'*len(head)]
    for (name, protocol), g in runs.groupby(['dataset', 'protocol'], sort=False):
        row = [name, str(g.features.iloc[0]), protocol, f'{g.epochs.mean():.0f}', cell(g.viann_rf), f'{PAPER[name]:.2f}',
               cell(g.viann_perm), cell(g.perm_rf), cell(g.valid)]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--datasets', nargs='+', default=list(PAPER), choices=list(PAPER))
    parser.add_argument('--protocols', nargs='+', default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument('--threads', type=int, default=1, help='torch threads (one is fastest for such small networks)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    start = time.perf_counter()
    runs = run(args.datasets, args.seeds, args.protocols)
    report = (f'Pearson correlation of importances, mean ± sd over {args.seeds} seed(s), written by '
              f'`python benchmarks/viann_validation.py` in {time.perf_counter() - start:.0f} s\n\n{table(runs)}\n')
    print(report)
    (Path(__file__).parent/'results').mkdir(exist_ok=True)
    (Path(__file__).parent/'results'/'viann_validation.md').write_text(report)
