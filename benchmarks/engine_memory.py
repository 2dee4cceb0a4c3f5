"""Peak memory that permutation importance adds, against the size of the encoded data, by `by` and `n_repeats`.

Each measure runs in a fresh process: it builds the frame and an untrained `[64, 32]` learner on 15 continuous and 5
categorical features, resets the kernel's high-water mark of resident memory (`/proc/self/clear_refs`), runs
`learn.permutation_importance(df=..., ...)` and reports the high-water mark above the resident memory before the
call. The encoded data is what the engine keeps: category codes (int64), continuous values and targets (float32).
The children run with glibc's `MALLOC_MMAP_THRESHOLD_` fixed at 128 KiB: by default glibc raises that threshold
after large frees and then keeps freed blocks resident, which made the high-water mark of the same call vary from
40 to 100 MB between runs; fixed, every large tensor is returned on free and the mark is the live peak (within a
few MB from run to run). Linux only. Writes the table to `benchmarks/results/engine_memory.md`. Run: `python benchmarks/engine_memory.py [--rows 200000 1000000]`.
"""
import argparse, json, os, subprocess, sys
from pathlib import Path

RESULTS = Path(__file__).parent/'results'/'engine_memory.md'
CHILD_ENV = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': str(128*1024)}  # large blocks returned on free: the mark is the live peak

CHILD = """
import json, sys, torch, numpy as np, pandas as pd
sys.path.insert(0, {here!r})
from engine import make_data, learner
torch.set_num_threads(1)
rows, by, repeats = {rows}, {by!r}, {repeats}
df = make_data(rows + 1000, 15, 5)
learn = learner(df, [64, 32])
data = df.iloc[:rows]
def status(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])*1024
learn.permutation_importance(df=data.iloc[:2000], by=by, n_repeats=1, seed=0, show_progress=False)  # warm up the imports
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS:')
res = learn.permutation_importance(df=data, by=by, n_repeats=repeats, seed=0, show_progress=False)
added = status('VmHWM:') - before
print(json.dumps(dict(added=added, encoded=rows*(5*8 + 15*4 + 4), width=64)))
"""


def run_child(template, **values):
    "Run the child script `template` (formatted with `values` and `here`, this folder) in a fresh process with `CHILD_ENV`; the JSON it prints last"
    code = template.format(here=str(Path(__file__).parent), **values)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, env=CHILD_ENV).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(rows, by, repeats): return run_child(CHILD, rows=rows, by=by, repeats=repeats)


def main(sizes):
    lines = ["20 features, [64, 32], untrained; peak resident memory added by the call\n",
             "| rows | by | repeats | encoded data | added peak | added / encoded |", "|---|---|---|---|---|---|"]
    print('\n'.join(lines), flush=True)
    for rows in sizes:
        for by in ('metric', 'prediction'):
            for repeats in (1, 5):
                m = measure(rows, by, repeats)
                line = (f"| {rows:,} | {by} | {repeats} | {m['encoded']/1e6:.0f} MB | {m['added']/1e6:.0f} MB | "
                        f"{m['added']/m['encoded']:.2f} |")
                lines.append(line); print(line, flush=True)
    RESULTS.write_text("# Peak memory of permutation importance\n\n`python benchmarks/engine_memory.py`\n\n" + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', type=int, nargs='+', default=[200_000, 1_000_000])
    main(p.parse_args().rows)
