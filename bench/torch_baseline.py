#!/usr/bin/python3
"""PyTorch speed baseline for `npm run bench`: one attribution-patching run, timed.

  /usr/bin/python3 bench/torch_baseline.py --model-dir DIR --request FILE.json [--repeats N] [--threads T]
      [--attributions-out FILE.json]

Families: GPT-2 (test/reference/gpt2_reference.py) and the Llama family (Llama, Qwen2: RMSNorm, RoPE,
GQA, SwiGLU, Qwen2's q/k/v biases, tied or untied head; test/reference/families_reference.py), both run
in float32 here. --attributions-out writes the last timed run's attributions (per hook kind, layer,
example, position[, head]) so that a test can check them against the engine's.

The request is the reference's format ({"examples": [{"cleanIds", "corruptedIds", "correctId",
"incorrectId"}, ...]}; other fields are ignored). One timed run does, in float32 on the CPU:
  1. the clean forward pass (no grad), keeping the activations at every hook point
     (resid_pre, z, attn_out, mlp_out of every layer);
  2. the corrupted forward pass with those activations in the autograd graph (weights do not
     require grad), logits only at the answer positions: ln_f(h_last) @ W_U^T over the full
     vocabulary at each example's last position;
  3. the metric N = (mean LD - LD_corr) / (LD_clean - LD_corr) (LD_clean, LD_corr detached);
  4. backward to the hook activations only, and sum_hidden grad * (clean - corrupted) per hook.
Examples are batched with right padding (each example's last position is gathered).
Model loading is not timed. The first run is a warm-up; then --repeats runs are timed.

Prints JSON: perRunSeconds (median), runs, torchVersion, threads, blas, matmulGflops (a float32
1024x1024 matmul), and the shapes. Warns on stderr when the BLAS is not OpenBLAS or the matmul
rate is under 30 GFLOP/s (Debian's reference BLAS is about 30x slower than OpenBLAS).
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--request", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--attributions-out")
    ap.add_argument("--adaptive", action="store_true",
                    help="time 3 runs, 2 when the warm-up took over 10 s, 1 over 40 s (as bench/matrix.ts does the engine)")
    return ap.parse_args()


ARGS = parse_args()
# BLAS thread pools read these when the library loads, so set them before importing torch.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# Idle OpenMP workers must not spin while OpenBLAS's own pthreads do the matmuls (with the
# default active wait, 2 threads on 2 cores ran 2-10x slower than 1 thread).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "reference"))
import gpt2_reference as ref  # noqa: E402
import families_reference as families  # noqa: E402


def loaded_blas_libraries():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path).lower()
                if any(key in base for key in ("blas", "mkl", "blis", "atlas")):
                    libs.add(path)
    except OSError:
        pass
    return sorted(libs)


def torch_blas_info():
    for part in torch.__config__.show().replace("\n", ",").split(","):
        if "BLAS_INFO=" in part:
            return part[part.index("BLAS_INFO="):].strip()
    return "BLAS_INFO=?"


def matmul_gflops(n=1024, repeats=20):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def build_batch(examples, key):
    lengths = [len(ex[key]) for ex in examples]
    T = max(lengths)
    ids = torch.zeros(len(examples), T, dtype=torch.long)
    for b, ex in enumerate(examples):
        ids[b, :len(ex[key])] = torch.tensor(ex[key])
    return ids, torch.tensor(lengths) - 1


def attribution_run(model, clean_ids, corr_ids, clean_last, corr_last, correct, incorrect):
    kinds = [(k, l) for k in ref.HOOK_KINDS for l in range(model.n_layer)]
    batch = torch.arange(clean_ids.shape[0])
    clean = {}
    with torch.no_grad():
        clean_logits = model.forward(clean_ids, hook=ref.capture_hook(clean), last_index=clean_last)
        ld_clean = (clean_logits[batch, correct] - clean_logits[batch, incorrect]).mean()
    corr = {}
    corr_logits = model.forward(corr_ids, hook=ref.capture_hook(corr), last_index=corr_last,
                                input_requires_grad=True)
    ld = (corr_logits[batch, correct] - corr_logits[batch, incorrect]).mean()
    ld_corr = ld.detach()
    metric = (ld - ld_corr) / (ld_clean - ld_corr)
    grads = torch.autograd.grad(metric, [corr[key] for key in kinds])
    with torch.no_grad():
        return {key: (g * (clean[key] - corr[key].detach())).sum(-1) for key, g in zip(kinds, grads)}


def memory_status():
    """Resident and peak resident bytes of this process (VmRSS, VmHWM), from /proc (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def reset_peak_memory():
    """Sets VmHWM back to VmRSS (Linux >= 4.0), so the peak after it is the run's, not the load's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    model_type = cfg.get("model_type")
    if model_type == "gpt2":
        return ref.GPT2(model_dir, dtype=torch.float32)
    if model_type in ("llama", "qwen2"):
        return families.LlamaFamily(cfg, ref.read_checkpoint(model_dir), model_dir, dtype=torch.float32)
    raise ref.ReferenceError(f"{model_dir}: model_type {model_type!r} has no speed baseline (gpt2, llama, qwen2)")


def main():
    torch.set_num_threads(ARGS.threads)
    with open(ARGS.request) as f:
        request = json.load(f)
    examples = request["examples"]
    model = load_model(ARGS.model_dir)
    for i, ex in enumerate(examples):
        model.check_ids(ex["cleanIds"], f"examples[{i}].cleanIds")
        model.check_ids(ex["corruptedIds"], f"examples[{i}].corruptedIds")
    clean_ids, clean_last = build_batch(examples, "cleanIds")
    corr_ids, corr_last = build_batch(examples, "corruptedIds")
    if clean_ids.shape != corr_ids.shape:
        raise SystemExit("clean and corrupted batches differ in shape")
    correct = torch.tensor([ex["correctId"] for ex in examples])
    incorrect = torch.tensor([ex["incorrectId"] for ex in examples])

    last = {}

    def once():
        t0 = time.perf_counter()
        last["attributions"] = attribution_run(model, clean_ids, corr_ids, clean_last, corr_last, correct, incorrect)
        return time.perf_counter() - t0

    loaded_rss, load_peak = memory_status()
    peak_reset = reset_peak_memory()
    warmup = once()
    repeats = (1 if warmup > 40 else 2 if warmup > 10 else 3) if ARGS.adaptive else ARGS.repeats
    runs = [once() for _ in range(repeats)]
    _, run_peak = memory_status()
    if ARGS.attributions_out:
        with open(ARGS.attributions_out, "w") as f:
            json.dump({f"{kind}.{layer}": value.tolist() for (kind, layer), value in last["attributions"].items()}, f)
    gflops = matmul_gflops()
    libs = loaded_blas_libraries()
    openblas_pthread = any("openblas" in os.path.basename(p).lower() and "pthread" in p.lower() for p in libs)
    if not openblas_pthread:
        sys.stderr.write(f"warning: OpenBLAS (pthread) is not the BLAS in use (loaded: {libs or 'none found'}); "
                         "install libopenblas0-pthread\n")
    if gflops < 30:
        sys.stderr.write(f"warning: float32 1024x1024 matmul runs at {gflops:.1f} GFLOP/s (< 30): "
                         "torch is probably on the reference BLAS; the baseline is not representative\n")
    out = {
        "perRunSeconds": statistics.median(runs),
        "runs": runs,
        "warmupSeconds": warmup,
        "torchVersion": torch.__version__,
        "threads": torch.get_num_threads(),
        "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
        "blas": f"{torch_blas_info()}; loaded: {', '.join(libs) if libs else 'none found'}",
        "openblasPthread": openblas_pthread,
        "matmulGflops": gflops,
        # Bytes: resident after loading the model (weights in float32), the peak during the load, and the peak
        # over the warm-up and timed runs (after resetting VmHWM; when that failed, the whole process's peak).
        "memory": {"loadedRss": loaded_rss, "loadPeak": load_peak, "runPeak": run_peak, "peakReset": peak_reset},
        "dtype": "float32",
        "batch": int(clean_ids.shape[0]),
        "seqLen": int(clean_ids.shape[1]),
        "model": {"nLayer": model.n_layer, "nHead": model.n_head, "dModel": model.d, "vocab": model.vocab},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ref.ReferenceError as e:
        sys.stderr.write(f"torch_baseline: {e}\n")
        sys.exit(1)
