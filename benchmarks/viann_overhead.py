"""What `VarianceImportance` adds to training time: the same fit without the callback and with each setting.

fastai calls every callback at every event of every batch, so an empty callback that does nothing costs
something too; it is timed as well, to tell fastai's toll on any callback from the work of this one.

A `tabular_learner` with layers [200, 100] on 20 continuous columns and a 500-level categorical is fitted from
the same initial weights again and again; the fits take turns, `--runs` rounds, and each reports its best
round (the machine is noisy). Run: `python benchmarks/viann_overhead.py [--rows 20000] [--epochs 3] [--runs 3]`.
"""
import argparse, warnings
from copy import deepcopy
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
SETTINGS = {'without the callback': lambda: [],
            'an empty Callback': lambda: [Callback()],
            "every='epoch'": lambda: [VarianceImportance(every='epoch')],
            "every='batch', view='layer'": lambda: [VarianceImportance(every='batch', view='layer')],
            "every='batch', view='onehot'": lambda: [VarianceImportance(every='batch', view='onehot')]}


def learner(rows, seed=0):
    "An untrained learner on synthetic regression data with a 500-level categorical"
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f'num{i}': rng.normal(size=rows) for i in range(20)})
    df['shop'] = rng.choice([f's{i}' for i in range(500)], rows)
    df['y'] = df.num0 + df.shop.str[1:].astype(int)/500 + rng.normal(size=rows)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=['shop'],
                                     cont_names=[f'num{i}' for i in range(20)], y_names='y', valid_pct=0.2, bs=256, seed=0)
    return tabular_learner(dls, layers=[200, 100])


def main(rows, epochs, runs, threads):
    torch.set_num_threads(threads)
    learn = learner(rows)
    start_weights = deepcopy(learn.model.state_dict())
    def fit(callbacks):
        learn.model.load_state_dict(start_weights)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2, cbs=callbacks())
    times = race({name: (lambda callbacks=callbacks: fit(callbacks)) for name, callbacks in SETTINGS.items()}, runs)
    base = times['without the callback']
    print(f"torch {torch.__version__}, {threads} thread(s); {rows:,} rows, {epochs} epochs of "
          f"{len(learn.dls.train)} batches; best of {runs}\n")
    for name, t in times.items():
        print(f"  {name:<30} {t:7.2f} s   {100*(t/base - 1):+6.1f}%")


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=20_000)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    main(a.rows, a.epochs, a.runs, a.threads)
