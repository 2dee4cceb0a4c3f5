"""Permutation importance as the data grows: time and peak memory per row from 125,000 to 1,000,000 rows.

Each size runs in a fresh process: it builds the frame (15 continuous and 5 categorical features) and an untrained
`[64, 32]` learner, warms up on 2,000 rows, resets the kernel's high-water mark of resident memory
(`/proc/self/clear_refs`), and runs `learn.permutation_importance(df=..., metric='loss', n_repeats=1, seed=0,
show_progress=False)` once, reporting its CPU seconds (one torch thread) and the high-water mark above the resident
memory before the call (glibc's `MALLOC_MMAP_THRESHOLD_` fixed, as in `engine_memory.py`). Linear in rows means flat
seconds and bytes per row. Linux only. Writes the table to
`benchmarks/results/scale.md`. Run: `python benchmarks/scale.py [--max-rows 1000000]`.
"""
import argparse
from pathlib import Path
from engine_memory import run_child

RESULTS = Path(__file__).parent/'results'/'scale.md'

CHILD = """
import json, sys, time, torch
sys.path.insert(0, {here!r})
from engine import make_data, learner
torch.set_num_threads(1)
rows = {rows}
df = make_data(rows + 1000, 15, 5)
learn = learner(df, [64, 32])
data = df.iloc[:rows]
def status(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])*1024
learn.permutation_importance(df=data.iloc[:2000], metric='loss', n_repeats=1, seed=0, show_progress=False)
open('/proc/self/clear_refs', 'w').write('5')
before = status('VmRSS:')
start = time.process_time()
learn.permutation_importance(df=data, metric='loss', n_repeats=1, seed=0, show_progress=False)
seconds = time.process_time() - start
print(json.dumps(dict(seconds=seconds, added=status('VmHWM:') - before, encoded=rows*(5*8 + 15*4 + 4))))
"""


def measure(rows): return run_child(CHILD, rows=rows)


def main(max_rows):
    lines = ["20 features (15 continuous, 5 categorical), [64, 32], untrained, `metric='loss'`, 1 repeat; one process per size\n",
             "| rows | seconds | µs per row | added peak | bytes per row | added / encoded |", "|---|---|---|---|---|---|"]
    print('\n'.join(lines), flush=True)
    rows = 125_000
    while rows <= max_rows:
        m = measure(rows)
        line = (f"| {rows:,} | {m['seconds']:.2f} | {1e6*m['seconds']/rows:.2f} | {m['added']/1e6:.0f} MB | "
                f"{m['added']/rows:.0f} | {m['added']/m['encoded']:.1f} |")
        lines.append(line); print(line, flush=True)
        rows *= 2
    RESULTS.write_text("# Permutation importance as the data grows\n\n`python benchmarks/scale.py`\n\n" + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--max-rows', type=int, default=1_000_000)
    main(p.parse_args().max_rows)
