"""`make demo`: which measurements tell a fastai network the species of a penguin?

Trains a small tabular learner on the Palmer penguins data that ships with the `palmerpenguins` package
(categorical columns and missing values, so `FillMissing` adds `_na` companions), computes permutation
importance with repeats, prints the table and writes the plot to `demo_importance.png`.
"""
import warnings
warnings.filterwarnings('ignore')
import matplotlib
matplotlib.use('Agg')
from fastai.tabular.all import *
from palmerpenguins import load_penguins
import fastai_featimp


def main(out='demo_importance.png'):
    df = load_penguins()
    set_seed(0, reproducible=True)
    cont_names = ['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g']
    dls = TabularDataLoaders.from_df(df, y_names='species', y_block=CategoryBlock(), cat_names=['island', 'sex'],
                                     cont_names=cont_names, procs=[Categorify, FillMissing, Normalize],
                                     valid_pct=0.3, seed=42, bs=32)
    learn = tabular_learner(dls, layers=[64, 32], metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(12, 1e-2)
    with learn.no_bar(): loss, acc = learn.validate()
    print(f"{len(df)} penguins, {len(dls.valid_ds)} held out: validation loss {loss:.3f}, accuracy {acc:.3f}")
    print(f"FillMissing companions: {[c for c in dls.cat_names if c.endswith('_na')]}\n")

    pi = learn.permutation_importance(metric='loss', n_repeats=10, seed=0)
    print(f"\nPermutation importance: increase in cross-entropy when a feature is shuffled (baseline {pi.baseline:.3f}),"
          f" mean of 10 repeats with a 95% interval")
    with pd.option_context('display.width', 140, 'display.precision', 4):
        print(pi.results.drop(columns=['n_inputs']).to_string(index=False))
    ax = pi.plot(title='Penguin species: permutation importance (10 repeats)')
    ax.figure.savefig(out, dpi=120)
    print(f"\nplot written to {out}")


if __name__ == '__main__': main()
