"""The engine's kept first-layer outputs: what they cost in memory and what they save in time.

Under the first-layer split the engine keeps each data row's first-layer output (`width` floats per row, up to
`fastai_featimp.engine.hidden_budget` bytes) and shifts it per perturbation; with `hidden_budget = 0` it keeps none
and computes each batch's outputs instead. For each case, permutation importance (`metric='loss'`) runs both ways
in turns, best of `--runs` rounds, CPU seconds, one torch thread; then each way runs once more in a fresh process on
the same data, which reports the peak resident memory the call adds (as `engine_memory.py`). Untrained networks.
Linux only. Writes `benchmarks/results/kept_outputs.md`. Run: `python benchmarks/kept_outputs.py`.
"""
import argparse, json, subprocess, sys, time, warnings
from pathlib import Path
import torch
from engine import make_data, learner
from timing import race
import fastai_featimp.engine as engine_module

warnings.filterwarnings('ignore')
RESULTS = Path(__file__).parent/'results'/'kept_outputs.md'
CASES = [('[64, 32]', [64, 32], 100_000, 15, 5, 5), ('[200, 100]', [200, 100], 100_000, 15, 5, 5),
         ('[200, 100]', [200, 100], 20_000, 80, 20, 1)]

CHILD = """
import json, sys, torch
sys.path.insert(0, {here!r})
from engine import make_data, learner
import fastai_featimp.engine as engine_module
torch.set_num_threads(1)
df = make_data({rows} + 1000, {n_cont}, {n_cat})
learn = learner(df, {layers})
data = df.iloc[:{rows}]
def status(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])*1024
learn.permutation_importance(df=data.iloc[:2000], metric='loss', n_repeats=1, seed=0, show_progress=False)
engine_module.hidden_budget = {budget}
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS:')
learn.permutation_importance(df=data, metric='loss', n_repeats={repeats}, seed=0, show_progress=False)
print(json.dumps(dict(added=status('VmHWM:') - before)))
"""


def peak(layers, rows, n_cont, n_cat, repeats, budget):
    code = CHILD.format(here=str(Path(__file__).parent), layers=layers, rows=rows, n_cont=n_cont, n_cat=n_cat, repeats=repeats, budget=budget)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])['added']


def main(runs):
    torch.set_num_threads(1)
    lines = [f"One torch thread; time: best of {runs} rounds in turns, CPU seconds; memory: peak resident memory added by the call, in a fresh process\n",
             "| layers | rows × features × repeats | encoded data | kept outputs | time kept | time none | none/kept | added peak kept | added peak none |",
             "|---|---|---|---|---|---|---|---|---|"]
    print('\n'.join(lines), flush=True)
    default = engine_module.hidden_budget
    for name, layers, rows, n_cont, n_cat, repeats in CASES:
        df = make_data(rows + 1000, n_cont, n_cat)
        learn, data = learner(df, layers), df.iloc[:rows]
        def run(budget):
            engine_module.hidden_budget = budget
            try: learn.permutation_importance(df=data, metric='loss', n_repeats=repeats, seed=0, show_progress=False)
            finally: engine_module.hidden_budget = default
        t = race({'kept': lambda: run(default), 'none': lambda: run(0)}, runs, time.process_time)
        encoded, kept = rows*(n_cat*8 + n_cont*4 + 4), rows*layers[0]*4
        memory = [peak(layers, rows, n_cont, n_cat, repeats, b) for b in (default, 0)]
        line = (f"| {name} | {rows:,} × {n_cont + n_cat} × {repeats} | {encoded/1e6:.0f} MB | {kept/1e6:.0f} MB | {t['kept']:.2f} s | "
                f"{t['none']:.2f} s | {t['none']/t['kept']:.2f} | {memory[0]/1e6:.0f} MB ({memory[0]/encoded:.1f}×) | {memory[1]/1e6:.0f} MB ({memory[1]/encoded:.1f}×) |")
        lines.append(line); print(line, flush=True)
    RESULTS.write_text("# Kept first-layer outputs: memory against time\n\n`python benchmarks/kept_outputs.py`\n\n" + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=3)
    main(p.parse_args().runs)
