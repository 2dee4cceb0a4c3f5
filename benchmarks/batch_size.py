"""Batch size and speed: the bare forward pass and one fused engine evaluation at several batch sizes, for networks of
three widths, and at the batch size `default_bs` picks.

Each time is the best of `--runs` passes over the same rows, the batch sizes taking turns (the machine is
noisy; the best is the least disturbed). Run: `python benchmarks/batch_size.py [--rows 80000] [--runs 5]`.
"""
import argparse, warnings
import numpy as np, pandas as pd, torch
from fastai.tabular.all import *
from fastai_featimp.all import *
from timing import race

warnings.filterwarnings('ignore')
SIZES = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
LAYERS = ([64, 32], [200, 100], [1000, 500])


def learner(rows, layers):
    "An untrained `tabular_learner` with `layers` on `rows` rows of 15 continuous and 5 categorical columns"
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f'num{i}': rng.normal(size=rows) for i in range(15)})
    for i in range(5): df[f'cat{i}'] = rng.choice([f'v{j}' for j in range(8)], rows)
    df['target'] = rng.normal(size=rows)
    dls = TabularDataLoaders.from_df(df, procs=[Categorify, Normalize], cat_names=[f'cat{i}' for i in range(5)],
                                     cont_names=[f'num{i}' for i in range(15)], y_names='target', valid_pct=0.5, seed=0)
    return tabular_learner(dls, layers=layers, metrics=rmse)


def main(rows, runs):
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms for {rows // 2:,} rows, best of {runs}; "
          f"last column: default_bs\n")
    print(f"{'layers':<12} {'pass':<9}" + ''.join(f'{bs:>8}' for bs in SIZES) + f"{'default':>16}")
    for layers in LAYERS:
        learn = learner(rows, layers)
        eng = Engine(learn)
        model, cats, conts = learn.model.eval(), eng.data.cats, eng.data.conts
        def bare(bs):
            with torch.no_grad():
                for i in range(0, len(cats), bs): model(cats[i:i+bs], conts[i:i+bs])
        scorer = MetricScorer(learn, 'rmse')
        def engine(bs):
            eng.bs = bs
            return eng.evaluate([Identity()], scorer)
        chosen = default_bs(model, 'cpu')
        for name, f in (('bare', bare), ('engine', engine)):
            times = race({bs: (lambda bs=bs: f(bs)) for bs in (*SIZES, chosen)}, runs)
            cells = [f"{times[bs]*1000:>8.0f}" for bs in SIZES] + [f"{times[chosen]*1000:>8.0f} ({chosen:>5})"]
            print(f"{str(layers):<12} {name:<9}" + ''.join(cells))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, default=160_000)
    p.add_argument('--runs', type=int, default=5)
    a = p.parse_args()
    main(a.rows, a.runs)
