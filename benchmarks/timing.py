"Timing for the benchmarks: contenders take turns, so that all of them meet the machine's noise alike"
import time


def race(contenders, runs, clock=time.perf_counter):
    "The best of `runs` timings, in seconds of `clock`, of each of `contenders` (name -> function), run in turn each round"
    times = {name: [] for name in contenders}
    for _ in range(runs):
        for name, f in contenders.items():
            start = clock(); f(); times[name].append(clock() - start)
    return {name: min(t) for name, t in times.items()}
