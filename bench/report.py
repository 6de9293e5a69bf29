"""Writes `bench/RESULTS.md` from the measurements in `bench/results/`.

    .venv/bin/python bench/report.py

Reads `throughput_cpu.jsonl` (`bench/throughput.py`), `notebooks_cpu.jsonl`
(`bench/notebooks.py`), `bf16_cpu.jsonl` (`bench/bf16.py`, a section per CPU model),
`bf16_quality.jsonl` (`bench/bf16_quality.py`) and `gpu_*.jsonl` (`bench/gpu.py` on the device machine) and sets
every figure beside the targets of the performance issue. Run it on the machine that made
the CPU measurements: it describes the machine it runs on.
"""

import json
import os
import platform
import statistics
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

TARGET_RATIO, TARGET_SGEMM, TARGET_RSS_MB, TARGET_QUICK_S = 1.3, 0.5, 3 * 1024, 20 * 60
CONTROLS = ("classifier", "denoiser")  # the keras.io style is the companion's own: compile and fit
COMPARED_BATCH = 128  # the batch of the per-backend table and the recommendation


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def current_names(rows):
    """`rows` with the models' present names: the GANs were measured under their former names
    (`companion.recipes.FORMER_NAMES`), which the benchmarks' model lists no longer use."""
    from companion.recipes import FORMER_NAMES

    return [{**r, "model": FORMER_NAMES.get(r["model"], r["model"])} for r in rows]


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("keras", "tensorflow", "jax", "torch", "numpy"))
    return (f"{cpu}; {len(os.sched_getaffinity(0))} cores available to the process; {memory_gb:.0f} GiB of memory; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}; {versions}")


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_section(rows):
    if not rows:
        return ["No CPU throughput measured yet: run `.venv/bin/python bench/throughput.py`.", ""]
    flops = {(r["model"], r["batch_size"]): r["flops_per_step"] for r in rows if "flops_per_step" in r}
    sgemm = {r["backend"]: statistics.median(x["sgemm_flops_per_second"] for x in rows if x["backend"] == r["backend"])
             for r in rows}
    from throughput import BACKENDS, MODELS

    out = ["## Training throughput on the CPU", ""]
    measured = {(r["backend"], r["model"]) for r in rows}
    missing = [f"{b} {m}" for b in BACKENDS for m in MODELS if (b, m) not in measured]
    if missing:
        out += [f"**Incomplete run**: {len(missing)} of {len(BACKENDS) * len(MODELS)} configurations are not measured yet "
                f"({', '.join(missing)}); `bench/throughput.py` resumes with them.", ""]
    repeats = sorted({r["repeats"] for r in rows})
    seconds = sorted({r["min_seconds"] for r in rows})
    out += [f"Each figure: the median of {'/'.join(map(str, repeats))} timed runs after a warm-up run; each run has as "
            f"many steps as fill {'/'.join(f'{s:g}' for s in seconds)} s by a timed two-step calibration "
            f"(`benchmark.timed_fits`; from {min(r['steps'] for r in rows)} to {max(r['steps'] for r in rows)} steps), "
            "so that `fit`'s fixed cost per call stays small beside the steps.", ""]
    out += ["Images per second of training, the median of the timed runs (warm-up excluded), each model in a fresh",
            "process per backend. SGEMM: the backend's own float32 `keras.ops.matmul` of two 2048 x 2048 matrices, "
            "measured in each of those processes (median shown):", ""]
    out += [table(["backend", "SGEMM (GFLOP/s)"], [(b, f"{s / 1e9:.1f}") for b, s in sorted(sgemm.items())]), ""]

    tf_rows = [r for r in rows if r["backend"] == "tensorflow" and "reference_images_per_second" in r]
    out += ["### Against the keras.io-style reference (TensorFlow, same architecture, same process)", ""]
    if tf_rows:
        out += ["The two implementations are timed in alternation (a run of each per round, "
                "`benchmark.interleaved_fits`); the ratio is the median over the rounds of companion / reference, "
                "so a slow spell of the machine falls on both sides of a ratio.", ""]
    body, ratios = [], []
    for r in sorted(tf_rows, key=lambda r: (r["model"], r["batch_size"])):
        ratio = r["paired_ratio"]
        ratios.append((r["model"], r["batch_size"], ratio))
        verdict = ("control (same code)" if r["model"] in CONTROLS
                   else "met" if ratio >= TARGET_RATIO else f"short by {TARGET_RATIO - ratio:.2f}")
        body.append((r["model"], r["batch_size"], f"{r['images_per_second']:,.0f}", f"{r['reference_images_per_second']:,.0f}",
                     f"{ratio:.2f}x", verdict))
    out += [table(["model", "batch", "companion (img/s)", "reference (img/s)", "ratio", f"target >= {TARGET_RATIO}x"], body), ""]
    compared = [ratio for model, _, ratio in ratios if model not in CONTROLS]
    controls = [ratio for model, _, ratio in ratios if model in CONTROLS]
    if compared:
        met = sum(ratio >= TARGET_RATIO for ratio in compared)
        out += [f"{met} of {len(compared)} configurations meet the {TARGET_RATIO}x target; their median ratio is "
                f"{statistics.median(compared):.2f}x."]
    if any(model == "cluster_wgan_gp" for model, _, _ in ratios):
        out += ["WGAN-GP: the keras.io example trains its critic 5 times on the whole batch (each time with fresh "
                "noise); the companion splits the batch into 5 parts, one per critic step, as Gulrajani et al.'s "
                "algorithm draws a fresh minibatch for each critic iteration. Per image of data the reference does "
                "about 5 times the critic's work, which is most of its ratio."]
    if controls:
        out += [f"The classifier and the denoiser are trained by `compile` and `fit` on both sides, as keras.io "
                f"does: they are not compared but show how far the same code's ratio strays from 1 on this machine "
                f"({min(controls):.2f}x to {max(controls):.2f}x)."]
    out += [""]

    out += ["### Achieved fraction of the SGEMM rate", "",
            "FLOPs per training step as XLA counts them for the JAX step (multiply-adds count 2; element-wise work "
            "included); the same arithmetic runs on every backend. Achieved rate = FLOPs per step x steps per second.", ""]
    body = []
    for model in sorted({r["model"] for r in rows}):
        for batch in sorted({r["batch_size"] for r in rows if r["model"] == model}):
            f = flops.get((model, batch))
            if f is None:
                continue
            cells = [model, batch, f"{f / 1e9:.3f}"]
            for backend in ("jax", "tensorflow", "torch"):
                r = next((x for x in rows if (x["backend"], x["model"], x["batch_size"]) == (backend, model, batch)), None)
                if r is None:
                    cells.append("")
                    continue
                achieved = f * r["images_per_second"] / batch
                cells.append(f"{achieved / 1e9:.1f} ({achieved / sgemm[backend]:.0%})")
            body.append(cells)
    out += [table(["model", "batch", "GFLOP/step", "JAX GFLOP/s (of SGEMM)", "TensorFlow", "PyTorch"], body), ""]
    dcgan = [(r["backend"], r["batch_size"], flops[r["model"], r["batch_size"]] * r["images_per_second"] / r["batch_size"]
              / sgemm[r["backend"]]) for r in rows if r["model"] == "cluster_gan" and ("cluster_gan", r["batch_size"]) in flops]
    if dcgan:
        best = max(dcgan, key=lambda t: t[2])
        out += [f"DCGAN (cluster_gan) target (a step at >= {TARGET_SGEMM:.0%} of SGEMM): best {best[2]:.0%} ({best[0]}, batch {best[1]}): "
                + ("met." if best[2] >= TARGET_SGEMM else f"short by {TARGET_SGEMM - best[2]:.0%} of SGEMM."), ""]

    out += [f"### Images per second on each backend (batch {COMPARED_BATCH}) and the backend the book recommends", ""]
    body = []
    for model in sorted({r["model"] for r in rows}):
        speeds = {r["backend"]: r for r in rows if r["model"] == model and r["batch_size"] == COMPARED_BATCH}
        if not speeds:
            continue
        best = max(speeds, key=lambda b: speeds[b]["images_per_second"])
        cells = [model]
        for backend in ("jax", "tensorflow", "torch"):
            r = speeds.get(backend)
            cells.append(f"{r['images_per_second']:,.0f}" if r else "")
        if len(speeds) == 3:
            cells.append(f"{best} ({speeds[best]['images_per_second'] / min(s['images_per_second'] for s in speeds.values()):.1f}x the slowest)")
        else:
            cells.append(f"{best} so far ({len(speeds)} of 3 backends measured)")
        cells.append(" / ".join(f"{speeds[b]['peak_rss_mb']:,.0f}" if b in speeds else "-" for b in ("jax", "tensorflow", "torch")))
        cells.append("yes" if all(s["outputs_finite"] and s["final_loss_finite"] for s in speeds.values()) else "NO")
        body.append(cells)
    out += [table(["model", "JAX", "TensorFlow", "PyTorch", "recommended", "peak RSS MB (JAX / TF / torch)", "finite"], body), ""]
    if any(r.get("peak_rss_includes_reference") for r in rows):
        out += ["Peak RSS: the process's, after all three batch sizes; TensorFlow's includes the keras.io-style "
                "reference trained in the same process (its model and its own copy of the training images).", ""]
    return out


def notebooks_section(rows):
    if not rows:
        return ["No notebook run measured yet: run `.venv/bin/python bench/notebooks.py`.", ""]
    out = ["## Notebooks", "",
           "Quick mode (`COMPANION_QUICK=1`, as in CI) run by `bench/notebooks.py` through nbclient, one fresh "
           "process each; peak RSS of the kernel. Full mode: the time between the first and the last cell of the "
           "stored outputs (the full runs that made the published book, on this machine type).", ""]
    body = [(r["notebook"], f"{r['quick_seconds']:.0f}", f"{r['quick_peak_rss_mb']:,.0f}",
             "" if r.get("full_seconds_stored") is None else f"{r['full_seconds_stored']:.0f}") for r in rows]
    total_quick = sum(r["quick_seconds"] for r in rows)
    total_full = sum(r.get("full_seconds_stored") or 0 for r in rows)
    body.append(("**all**", f"**{total_quick:.0f}**", f"**{max(r['quick_peak_rss_mb'] for r in rows):,.0f}** (max)",
                 f"**{total_full:.0f}**"))
    out += [table(["notebook", "quick (s)", "quick peak RSS (MB)", "full (s, stored)"], body), ""]
    peak = max(r["quick_peak_rss_mb"] for r in rows)
    out += [f"Targets: peak RSS of any notebook <= 3 GB: {peak / 1024:.2f} GB, " + ("met" if peak <= TARGET_RSS_MB else "short")
            + f"; the whole quick run <= 20 min: {total_quick / 60:.1f} min, "
            + ("met" if total_quick <= TARGET_QUICK_S else "short") + ".", ""]
    return out


def gpu_section():
    out = []
    import gpu

    for path in sorted(RESULTS.glob("gpu_*.jsonl")):
        rows = read_jsonl(path)
        device = rows[0].get("device", "?") if rows else "?"
        out += [f"## One GPU: {device} (`{path.relative_to(HERE.parent)}`)", "",
                "`bench/gpu_device.sh` on the device machine: JAX and PyTorch, batch 256 and 1024, float32 and bf16 mixed "
                "precision, samples checked finite.", "", gpu.table(path), ""]
    return out


def spread(ratios):
    """The range of a median's round-by-round ratios, "(lowest-highest)"."""
    return f"({min(ratios):.2f}-{max(ratios):.2f})" if ratios else ""


def bf16_section(rows):
    """One section per CPU model measured by `bench/bf16.py`: its bf16 units, the kernels'
    rates and every model's bf16 / float32 ratio of training speed, per backend."""
    if not rows:
        return ["## bfloat16 on the CPU", "", "Not measured yet: run `.venv/bin/python bench/bf16.py`.", ""]
    from bf16 import BACKENDS, KERNELS, MODELS

    out = []
    cpus = sorted({(r["cpu"], r["cpu_family_model"]) for r in rows}, key=str)
    for cpu, family in cpus:
        mine = [r for r in rows if (r["cpu"], r["cpu_family_model"]) == (cpu, family)]
        units = mine[0]["bf16_units"]
        backends = [b for b in BACKENDS if any(r["backend"] == b for r in mine)]
        out += [f"## bfloat16 on the CPU: {cpu} ({family})", "",
                f"bf16 units (`/proc/cpuinfo`): {', '.join(units) if units else 'none'}. `bench/bf16.py`, each backend in a "
                "fresh process; float32 and bfloat16 runs alternate, and each ratio is the median of the ratios of "
                "runs timed side by side.", ""]
        kernels = {r["backend"]: r["kernels"] for r in mine if r["kind"] == "kernels"}
        if kernels:
            header = ["kernel (batch %d)" % next(r["batch_size"] for r in mine if r["kind"] == "kernels")]
            header += [f"{b} {what}" for b in backends if b in kernels for what in ("float32", "bfloat16", "ratio")]
            body = [[k] + [cell for b in backends if b in kernels for cell in
                           (f"{kernels[b][k]['float32_gflops']:.0f}", f"{kernels[b][k]['bfloat16_gflops']:.0f}",
                            f"{kernels[b][k]['ratio']:.2f}x")] for k in KERNELS]
            out += ["Kernel rates through `keras.ops`, GFLOP/s (channels last, as Keras lays out images):", "",
                    table(header, body), ""]
        models = {(r["backend"], r["model"]): r for r in mine if r["kind"] == "model"}
        if models:
            # TensorFlow's VAEs and GANs: float32 with XLA (as trained) and without it, timed in the same rounds
            plain = {b for (b, _), r in models.items() if "ratio_without_xla" in r}
            header = ["model"]
            for b in backends:
                header += [f"{b} float32", f"{b} mixed_bfloat16", f"{b} ratio"]
                header += [f"{b} float32 without XLA", f"{b} ratio to it"] if b in plain else []
            body = []
            for m in MODELS:
                cells = []
                for b in backends:
                    r = models.get((b, m))
                    cells += ([f"{r['float32_images_per_second']:,.0f}", f"{r['bfloat16_images_per_second']:,.0f}",
                               f"**{r['ratio']:.2f}x** {spread(r['ratios'])}"
                               + ("" if all(r["losses_finite"].values()) else " (non-finite loss)")]
                              if r else ["", "", ""])
                    if b in plain:
                        cells += ([f"{r['float32_without_xla_images_per_second']:,.0f}", f"**{r['ratio_without_xla']:.2f}x** {spread(r.get('ratios_without_xla'))}"]
                                  if r and "ratio_without_xla" in r else ["", ""])
                body.append([m] + cells)
            batch = sorted({r["batch_size"] for r in models.values()})
            out += [f"Training images per second at batch {'/'.join(map(str, batch))}, the recipe's model built under each "
                    "policy in one process and timed in the same rounds (`benchmark.interleaved_fits`), each compiled as "
                    "`python -m companion train` compiles it (on TensorFlow the VAEs and GANs with XLA in float32 and "
                    "without it under bfloat16, where XLA gains nothing: `Recipe.compile_options`)"
                    + ("; on TensorFlow float32 without XLA as well, in the same rounds, so that bfloat16 is also "
                       "compared with a float32 step compiled alike" if plain else "")
                    + ". A ratio is the median of the rounds' ratios, with their range in brackets:", "",
                    table(header, body), ""]
    return out


def bf16_quality_section(rows):
    """`bench/bf16_quality.py`: the two policies' quality, two seeds each, per CPU and backend."""
    if not rows:
        return []
    out = []
    for cpu, backend, epochs in sorted({(r["cpu"], r["backend"], r["epochs"]) for r in rows}):
        mine = [r for r in rows if (r["cpu"], r["backend"], r["epochs"]) == (cpu, backend, epochs)]
        body = []
        for model in dict.fromkeys(r["model"] for r in mine):
            values = {p: [r["value"] for r in sorted(mine, key=lambda r: r["seed"]) if (r["model"], r["precision"]) == (model, p)]
                      for p in ("float32", "bfloat16")}
            seconds = {p: sum(r["train_seconds"] for r in mine if (r["model"], r["precision"]) == (model, p))
                       for p in ("float32", "bfloat16")}
            if not all(len(v) == 2 for v in values.values()):
                continue
            spread = abs(values["float32"][0] - values["float32"][1])
            gap = sum(values["bfloat16"]) / 2 - sum(values["float32"]) / 2
            metric = next(r["metric"] for r in mine if r["model"] == model).replace("_", " ")
            body.append([model, metric, " / ".join(f"{v:.2f}" for v in values["float32"]), f"{spread:.2f}",
                         " / ".join(f"{v:.2f}" for v in values["bfloat16"]),
                         " / ".join(f"{b - a:+.2f}" for a, b in zip(values["float32"], values["bfloat16"])), f"{gap:+.2f}",
                         "within" if abs(gap) <= spread else "**outside**", f"{seconds['float32'] / seconds['bfloat16']:.2f}x"])
        out += [f"### Quality under bfloat16: {cpu}, {backend}, {epochs} epochs", "",
                "`bench/bf16_quality.py`: each model trained by `python -m companion train MODEL --epochs "
                f"{epochs} --precision P --seed S` (seeds 0 and 1) and measured in float32 (the GAN: classifier FID of "
                "10,000 samples; the VAE: negative ELBO in nats per test image). Is the difference of the two policies' "
                "means within the float32 seeds' spread? (Two seeds give a crude spread; the training speed-up is of "
                "whole runs timed one after another, not interleaved.)", "",
                table(["model", "metric", "float32 (seed 0 / 1)", "float32 spread", "bfloat16 (seed 0 / 1)",
                       "bfloat16 - float32 (seed 0 / 1)", "difference of means", "within the spread", "training speed-up"], body), ""]
    return out


def main():
    sections = ["# Benchmark results", "",
                "Written by `.venv/bin/python bench/report.py` from `bench/results/`; regenerate with `make bench`.", "",
                f"CPU machine: {machine()}.", "",
                "Two recipes changed after these measurements (session 7): `conditional_gan` became an AC-GAN, `acgan` "
                "(`ACGAN`: its discriminator reads the image alone and has a class head, where `ConditionalGAN`'s "
                "read the label as an extra channel) and the denoiser gained two 3x3 convolutions at 7x7 "
                "(`bottleneck_convs=2`). Their rows here are of the earlier networks; to re-measure them, delete their "
                "lines from `bench/results/*.jsonl` and run `bench/throughput.py --models acgan denoiser`.", ""]
    sections += throughput_section(current_names(read_jsonl(RESULTS / "throughput_cpu.jsonl")))
    sections += notebooks_section(read_jsonl(RESULTS / "notebooks_cpu.jsonl"))
    sections += bf16_section(read_jsonl(RESULTS / "bf16_cpu.jsonl"))
    sections += bf16_quality_section(read_jsonl(RESULTS / "bf16_quality.jsonl"))
    sections += gpu_section()
    (HERE / "RESULTS.md").write_text("\n".join(sections))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
