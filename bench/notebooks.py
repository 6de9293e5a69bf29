"""Run time and peak memory of every chapter notebook in quick mode; full-mode times as stored.

Each notebook runs in quick mode (`COMPANION_QUICK=1`, the CI setting) through nbclient, in
a fresh process of its own; the kernel's peak resident memory is read from the kernel
process after it exits (`RUSAGE_CHILDREN` of that process). The full-mode time is read from
the cell timings nbclient stored when the published outputs were made (first cell started to
last cell finished). Nothing is written to the notebooks.

    .venv/bin/python bench/notebooks.py [chapters/NAME.ipynb ...]

Results go to `bench/results/notebooks_cpu.jsonl` (one line per notebook, replaced on rerun);
`bench/report.py` puts them in `bench/RESULTS.md`. About 10 minutes on two CPU cores.
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "notebooks_cpu.jsonl"


def stored_full_seconds(path):
    """Seconds from the first cell's start to the last cell's end, from the stored timings."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    timings = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    starts = [t["iopub.execute_input"] for t in timings if "iopub.execute_input" in t]
    ends = [t["shell.execute_reply"] for t in timings if "shell.execute_reply" in t]
    if not starts or not ends:
        return None

    def parse(stamp):
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    return (parse(max(ends)) - parse(min(starts))).total_seconds()


def run_quick(path):
    """Runs in its own process: executes the notebook in quick mode, prints one JSON line."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    seconds = time.perf_counter() - start
    # The kernel was this process's child and has been waited for: its peak is the children's peak.
    kernel_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"notebook": Path(path).name, "quick_seconds": seconds, "quick_peak_rss_mb": kernel_peak}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_quick(args.worker)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    previous = {}
    if args.output.exists():
        previous = {r["notebook"]: r for r in map(json.loads, args.output.read_text().splitlines()) if r}
    env = {**os.environ, "COMPANION_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.setdefault("KERAS_BACKEND", "tensorflow")
    for path in tqdm(notebooks, desc="notebooks", unit="nb"):
        done = subprocess.run([sys.executable, __file__, "--worker", str(path)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{path} failed in quick mode (exit {done.returncode}):\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(full_seconds_stored=stored_full_seconds(path), backend=env["KERAS_BACKEND"])
        previous[row["notebook"]] = row
        tqdm.write(f"{row['notebook']:34} quick {row['quick_seconds']:6.0f} s, peak {row['quick_peak_rss_mb']:6.0f} MB")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for _, r in sorted(previous.items())))
        tmp.replace(args.output)  # atomically: an interrupted run keeps what it measured


if __name__ == "__main__":
    main()
