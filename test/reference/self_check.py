#!/usr/bin/python3
"""Self-check of test/reference/gpt2_reference.py, independent of the TypeScript engine.

Builds tiny random GPT-2 checkpoints (seeded; 2 layers, d=16, 4 heads, vocab 50, n_positions 32)
in a temporary directory, written as safetensors by hand in F32 and BF16, single-file and
sharded, and checks:

  forward  the reference's logits against a separate, loop-based numpy GPT-2 forward pass that
           works from the in-memory weights (not from the files), including a variant with
           scale_attn_by_inverse_layer_idx and an untied lm_head;
  (a)      every gradient attribution against a central finite difference of N along
           (clean - corrupted) at that one component (float64, relative tolerance 1e-7);
  (b)      patching resid_pre at layer 0 at all positions reproduces the clean run (N = 1 for a
           one-example request, LD_i(patched) = LD_i(clean) for each example), and per component:
           resid_pre layer-0 patching at position p equals swapping in the clean token at p
           (computed with the numpy forward); patching z at all heads = patching attn_out at
           that position; last-layer attn_out/mlp_out patching is 0 before the last position;
  (c)      sharded index loading, the `transformer.` prefix, and BF16 loading (against F32
           files holding the same bf16-rounded values) give identical numbers;
  cli      the stdin/stdout JSON protocol, and exit code 1 with a stderr message on errors.

Prints PASS/FAIL per check and a summary; exits 1 on any failure.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_reference as ref  # noqa: E402

REFERENCE = os.path.join(HERE, "gpt2_reference.py")
FAILURES = []
PASSES = []


def check(name, ok, detail=""):
    line = f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else "")
    print(line, flush=True)
    (PASSES if ok else FAILURES).append(name)


# ---------------------------------------------------------------------------------------------
# writing checkpoints

def f32_to_bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # round to nearest even
    return rounded.astype(np.uint16)


def bf16_round(a):
    return (f32_to_bf16_bits(a).astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        if dtype == "BF16":
            raw = f32_to_bf16_bits(arr).astype("<u2").tobytes()
        elif dtype == "F16":
            raw = np.asarray(arr, dtype="<f2").tobytes()
        else:
            raw = np.asarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def random_gpt2(seed, n_layer=2, d=16, n_head=4, vocab=50, n_pos=32, untied=False):
    rng = np.random.default_rng(seed)

    def n(*shape, std=1.0):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = {"wte.weight": n(vocab, d), "wpe.weight": n(n_pos, d, std=0.3)}
    for l in range(n_layer):
        p = f"h.{l}."
        w[p + "ln_1.weight"] = 1 + n(d, std=0.1)
        w[p + "ln_1.bias"] = n(d, std=0.1)
        w[p + "attn.c_attn.weight"] = n(d, 3 * d, std=0.4)
        w[p + "attn.c_attn.bias"] = n(3 * d, std=0.1)
        w[p + "attn.c_proj.weight"] = n(d, d, std=0.3)
        w[p + "attn.c_proj.bias"] = n(d, std=0.1)
        w[p + "ln_2.weight"] = 1 + n(d, std=0.1)
        w[p + "ln_2.bias"] = n(d, std=0.1)
        w[p + "mlp.c_fc.weight"] = n(d, 4 * d, std=0.4)
        w[p + "mlp.c_fc.bias"] = n(4 * d, std=0.1)
        w[p + "mlp.c_proj.weight"] = n(4 * d, d, std=0.2)
        w[p + "mlp.c_proj.bias"] = n(d, std=0.1)
    w["ln_f.weight"] = 1 + n(d, std=0.1)
    w["ln_f.bias"] = n(d, std=0.1)
    if untied:
        w["lm_head.weight"] = n(vocab, d)
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": n_layer, "n_head": n_head,
           "n_embd": d, "n_positions": n_pos, "n_ctx": n_pos, "vocab_size": vocab, "layer_norm_epsilon": 1e-5,
           "activation_function": "gelu_new", "n_inner": None}
    if untied:
        cfg["tie_word_embeddings"] = False
    return cfg, w


def save_model(directory, cfg, weights, dtype="F32", prefix="transformer.", shards=1):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f)
    named = {(name if name.startswith("lm_head") else prefix + name): arr for name, arr in weights.items()}
    if shards == 1:
        write_safetensors(os.path.join(directory, "model.safetensors"), named, dtype, {"format": "pt"})
        return directory
    names = list(named)
    weight_map = {}
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: named[name] for name in names[s::shards]}
        write_safetensors(os.path.join(directory, file), part, dtype, {"format": "pt"})
        weight_map.update({name: file for name in part})
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    return directory


# ---------------------------------------------------------------------------------------------
# an independent, loop-based numpy forward pass (float64, from in-memory weights)

def numpy_last_logits(cfg, weights, ids):
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    d, H = cfg["n_embd"], cfg["n_head"]
    dh = d // H
    eps = cfg["layer_norm_epsilon"]
    T = len(ids)

    def ln(v, g, b):
        mu = sum(v) / len(v)
        var = sum((vi - mu) ** 2 for vi in v) / len(v)
        return np.array([(vi - mu) / math.sqrt(var + eps) for vi in v]) * g + b

    def gelu(v):
        return np.array([0.5 * x * (1 + math.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))) for x in v])

    x = [w["wte.weight"][t] + w["wpe.weight"][p] for p, t in enumerate(ids)]
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        hs = [ln(x[i], w[p + "ln_1.weight"], w[p + "ln_1.bias"]) for i in range(T)]
        qkv = [np.dot(h, w[p + "attn.c_attn.weight"]) + w[p + "attn.c_attn.bias"] for h in hs]
        z = np.zeros((T, d))
        for head in range(H):
            sl = slice(head * dh, (head + 1) * dh)
            for i in range(T):
                q = qkv[i][0:d][sl]
                scores = []
                for j in range(i + 1):
                    k = qkv[j][d:2 * d][sl]
                    s = float(np.dot(q, k)) / math.sqrt(dh)
                    if cfg.get("scale_attn_by_inverse_layer_idx"):
                        s /= (l + 1)
                    scores.append(s)
                m = max(scores)
                e = [math.exp(s - m) for s in scores]
                tot = sum(e)
                for j in range(i + 1):
                    z[i, sl] += (e[j] / tot) * qkv[j][2 * d:3 * d][sl]
        for i in range(T):
            x[i] = x[i] + np.dot(z[i], w[p + "attn.c_proj.weight"]) + w[p + "attn.c_proj.bias"]
        for i in range(T):
            h2 = ln(x[i], w[p + "ln_2.weight"], w[p + "ln_2.bias"])
            a = gelu(np.dot(h2, w[p + "mlp.c_fc.weight"]) + w[p + "mlp.c_fc.bias"])
            x[i] = x[i] + np.dot(a, w[p + "mlp.c_proj.weight"]) + w[p + "mlp.c_proj.bias"]
    hf = ln(x[T - 1], w["ln_f.weight"], w["ln_f.bias"])
    unembed = w["lm_head.weight"] if "lm_head.weight" in w else w["wte.weight"]
    return np.array([float(np.dot(unembed[v], hf)) for v in range(cfg["vocab_size"])])


# ---------------------------------------------------------------------------------------------

def make_examples(seed, vocab, lengths):
    rng = np.random.default_rng(seed)
    examples = []
    for T in lengths:
        clean = rng.integers(0, vocab, T).tolist()
        corrupted = list(clean)
        for p in rng.choice(T, size=min(3, T), replace=False):
            corrupted[int(p)] = int((clean[int(p)] + 1 + rng.integers(0, vocab - 1)) % vocab)
        a, b = rng.choice(vocab, size=2, replace=False)
        examples.append({"cleanIds": clean, "corruptedIds": corrupted, "correctId": int(a), "incorrectId": int(b)})
    return examples


def call_cli(request):
    proc = subprocess.run([sys.executable, REFERENCE], input=json.dumps(request), capture_output=True, text=True)
    return proc


def max_abs_diff_nested(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def responses_equal(r1, r2):
    worst = 0.0
    for key in ("cleanLogitDiffs", "corruptedLogitDiffs"):
        worst = max(worst, max_abs_diff_nested(r1[key], r2[key]))
    for group in ("attributions", "activationPatching"):
        if group in r1:
            for kind in ref.HOOK_KINDS:
                for a, b in zip(r1[group][kind], r2[group][kind]):
                    worst = max(worst, max_abs_diff_nested(a, b))
    return worst


def finite_difference_check(run, attributions, eps=1e-5):
    """(a): attribution vs (N(+eps) - N(-eps)) / 2eps per component, along clean - corrupted."""
    model = run.model
    H = model.n_head
    summary = {}
    for kind in ref.HOOK_KINDS:
        attr_all = []
        fd_all = []
        for i, ex in enumerate(run.examples):
            T = len(ex["corruptedIds"])
            mask = ref.component_masks(kind, T, H)
            mask2 = torch.cat([mask, mask])
            C = mask.shape[0]
            for layer in range(model.n_layer):
                corr = run.corr_acts[i][(kind, layer)]
                diff = run.clean_acts[i][(kind, layer)] - corr
                source = torch.stack([corr + eps * diff, corr - eps * diff])  # [2, ...]
                source = source.repeat_interleave(C, dim=0)
                lds = run.patched_lds(i, kind, layer, mask2, source)
                fd = (lds[:C] - lds[C:]) / (2 * eps) * run.scale
                fd_all.append(fd.reshape(-1))
                attr_all.append(attributions[kind][i][layer].reshape(-1))
        a = torch.cat(attr_all)
        f = torch.cat(fd_all)
        scale = float(a.abs().max())
        err = (a - f).abs()
        rel = float((err / scale).max())
        big = a.abs() > 1e-3 * scale
        rel_big = float((err[big] / a[big].abs()).max()) if bool(big.any()) else 0.0
        summary[kind] = (rel, rel_big, a.numel(), scale)
    return summary


def main():
    tmp = tempfile.mkdtemp(prefix="gpt2_ref_selfcheck_")
    try:
        return checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def checks(tmp):
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    cfg, weights = random_gpt2(seed=1234)
    examples = make_examples(seed=99, vocab=cfg["vocab_size"], lengths=[7, 10, 9])

    f32_dir = save_model(os.path.join(tmp, "f32"), cfg, weights, "F32", prefix="transformer.")
    f32_sharded = save_model(os.path.join(tmp, "f32_sharded"), cfg, weights, "F32", prefix="transformer.", shards=3)
    rounded = {k: bf16_round(v) for k, v in weights.items()}
    bf16_dir = save_model(os.path.join(tmp, "bf16"), cfg, weights, "BF16", prefix="")
    bf16_as_f32 = save_model(os.path.join(tmp, "bf16_as_f32"), cfg, rounded, "F32", prefix="transformer.")
    bf16_sharded = save_model(os.path.join(tmp, "bf16_sharded"), cfg, weights, "BF16", prefix="", shards=2)

    # -- cli round trip (also the main numbers used below) ----------------------------------
    request = {"modelDir": f32_dir, "examples": examples, "returnLogits": True, "activationPatching": True}
    proc = call_cli(request)
    check("cli: request on stdin, JSON response on stdout, exit 0", proc.returncode == 0,
          proc.stderr.strip()[:300])
    if proc.returncode != 0:
        return finish()
    resp = json.loads(proc.stdout)
    n_layer, H = cfg["n_layer"], cfg["n_head"]
    shapes_ok = True
    for kind in ref.HOOK_KINDS:
        for group in ("attributions", "activationPatching"):
            for i, ex in enumerate(examples):
                arr = np.asarray(resp[group][kind][i])
                want = (n_layer, len(ex["cleanIds"])) + ((H,) if kind == "z" else ())
                shapes_ok &= arr.shape == want
    shapes_ok &= np.asarray(resp["cleanLastLogits"]).shape == (len(examples), cfg["vocab_size"])
    check("cli: response shapes ([ex][layer][pos](+[head]), [ex][vocab])", bool(shapes_ok))
    check("cli: LD means", abs(resp["cleanLogitDiff"] - np.mean(resp["cleanLogitDiffs"])) < 1e-12
          and abs(resp["corruptedLogitDiff"] - np.mean(resp["corruptedLogitDiffs"])) < 1e-12,
          f"LD_clean={resp['cleanLogitDiff']:.6f} LD_corr={resp['corruptedLogitDiff']:.6f}")

    bad = call_cli({"modelDir": f32_dir, "examples": [dict(examples[0], cleanIds=[1, 2, 999])]})
    check("cli: invalid token id -> exit 1 with a stderr message",
          bad.returncode == 1 and "not in [0, 50)" in bad.stderr and bad.stdout == "", bad.stderr.strip()[:200])
    bad = call_cli({"modelDir": os.path.join(tmp, "nowhere"), "examples": examples})
    check("cli: missing model dir -> exit 1", bad.returncode == 1 and "config.json" in bad.stderr,
          bad.stderr.strip()[:200])
    bad = subprocess.run([sys.executable, REFERENCE], input="{not json", capture_output=True, text=True)
    check("cli: malformed JSON -> exit 1", bad.returncode == 1 and bad.stderr != "")

    # -- forward against the numpy loop implementation ------------------------------------------
    worst = 0.0
    for i, ex in enumerate(examples):
        for key, logits_key in (("cleanIds", "cleanLastLogits"), ("corruptedIds", "corruptedLastLogits")):
            want = numpy_last_logits(cfg, weights, ex[key])
            worst = max(worst, float(np.max(np.abs(np.asarray(resp[logits_key][i]) - want))))
    check("forward: last-position logits = loop-based numpy GPT-2 (tied, scale 1/sqrt(d_head))", worst < 1e-10,
          f"max |diff| {worst:.2e}")
    cfg_b, weights_b = random_gpt2(seed=77, untied=True)
    cfg_b["scale_attn_by_inverse_layer_idx"] = True
    var_dir = save_model(os.path.join(tmp, "variant"), cfg_b, weights_b, "F32", prefix="")
    model_b = ref.GPT2(var_dir)
    worst = 0.0
    for ex in examples:
        got = model_b.forward(torch.tensor([ex["cleanIds"]]))[0].numpy()
        worst = max(worst, float(np.max(np.abs(got - numpy_last_logits(cfg_b, weights_b, ex["cleanIds"])))))
    check("forward: variant with scale_attn_by_inverse_layer_idx and untied lm_head = numpy", worst < 1e-10,
          f"max |diff| {worst:.2e}")

    # -- (a) attributions vs finite differences ------------------------------------------------
    model = ref.GPT2(f32_dir)
    run = ref.Run(model, examples)
    attributions = run.attributions()
    worst = 0.0
    for kind in ref.HOOK_KINDS:
        for i in range(len(examples)):
            worst = max(worst, max_abs_diff_nested(attributions[kind][i].tolist(), resp["attributions"][kind][i]))
    check("(a) in-process attributions = CLI response", worst == 0.0, f"max |diff| {worst:.1e}")
    fd = finite_difference_check(run, attributions)
    for kind, (rel, rel_big, count, scale) in fd.items():
        check(f"(a) {kind}: attribution = central finite difference of N along clean-corrupted",
              rel < 1e-7,
              f"{count} components, max|attr| {scale:.3e}, max err / max|attr| {rel:.1e}, "
              f"max rel err where |attr| > 1e-3 max: {rel_big:.1e}")

    # -- (b) activation patching --------------------------------------------------------------
    full = []
    for i, ex in enumerate(examples):
        T = len(ex["corruptedIds"])
        mask = torch.ones(1, T, 1, dtype=torch.bool)
        ld = float(run.patched_lds(i, "resid_pre", 0, mask, run.clean_acts[i][("resid_pre", 0)].unsqueeze(0))[0])
        full.append(abs(ld - run.clean_lds[i]))
    check("(b) resid_pre layer 0 patched at all positions: LD_i(patched) = LD_i(clean) per example",
          max(full) < 1e-10, f"max |diff| {max(full):.1e}")
    single = ref.Run(model, examples[:1])
    T = len(examples[0]["corruptedIds"])
    ld = float(single.patched_lds(0, "resid_pre", 0, torch.ones(1, T, 1, dtype=torch.bool),
                                  single.clean_acts[0][("resid_pre", 0)].unsqueeze(0))[0])
    n_value = (ld - single.ld_corr) / single.denom
    check("(b) one-example request: N after patching all of resid_pre layer 0 = 1", abs(n_value - 1) < 1e-10,
          f"N = {n_value:.15f}")

    patching = resp["activationPatching"]
    worst = 0.0
    for i, ex in enumerate(examples):
        corr_ld = resp["corruptedLogitDiffs"][i]
        for p in range(len(ex["corruptedIds"])):
            ids = list(ex["corruptedIds"])
            ids[p] = ex["cleanIds"][p]
            logits = numpy_last_logits(cfg, weights, ids)
            want = (logits[ex["correctId"]] - logits[ex["incorrectId"]] - corr_ld) * run.scale
            worst = max(worst, abs(patching["resid_pre"][i][0][p] - want))
    check("(b) per component: resid_pre layer 0 at pos p = corrupted run with the clean token at p (numpy)",
          worst < 1e-10, f"max |diff| {worst:.1e}")
    for i, ex in enumerate(examples):
        print(f"      example {i}: resid_pre[0] patching per position: "
              + " ".join(f"{v:+.4f}" for v in patching["resid_pre"][i][0]), flush=True)

    zeros = 0.0
    for i, ex in enumerate(examples):
        same = [p for p in range(len(ex["cleanIds"])) if ex["cleanIds"][p] == ex["corruptedIds"][p]]
        for p in same:
            zeros = max(zeros, abs(patching["resid_pre"][i][0][p]))
        for kind in ("attn_out", "mlp_out"):
            zeros = max(zeros, max(abs(v) for v in patching[kind][i][n_layer - 1][:-1]))
        zeros = max(zeros, max(abs(v) for v in patching["z"][i][n_layer - 1][:-1] for v in v))
    # (not bit-exact: the batched patch runs and the single corrupted run may round differently)
    check("(b) per component: patching is 0 where it cannot matter "
          "(same token at layer 0; last layer before the last position)", zeros < 1e-12, f"max |value| {zeros:.1e}")

    worst = 0.0
    for i, ex in enumerate(examples):
        T = len(ex["corruptedIds"])
        for layer in range(n_layer):
            for p in range(T):
                m = torch.zeros(1, T, H, 1, dtype=torch.bool)
                m[0, p] = True
                ld_z = float(run.patched_lds(i, "z", layer, m, run.clean_acts[i][("z", layer)].unsqueeze(0))[0])
                want = (ld_z - run.corr_lds[i]) * run.scale
                worst = max(worst, abs(patching["attn_out"][i][layer][p] - want))
    check("(b) per component: attn_out patching at (layer, pos) = patching z at all heads there",
          worst < 1e-12, f"max |diff| {worst:.1e}")

    # -- (c) loading: sharded, prefix, BF16 ---------------------------------------------------
    def resp_for(directory):
        p = call_cli({"modelDir": directory, "examples": examples, "activationPatching": True})
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        return json.loads(p.stdout)

    try:
        r_sharded = resp_for(f32_sharded)
        d = responses_equal(resp, r_sharded)
        check("(c) sharded index (3 shards) = single file (F32)", d == 0.0, f"max |diff| {d:.1e}")
        r_bf16 = resp_for(bf16_dir)
        r_bf16_f32 = resp_for(bf16_as_f32)
        d = responses_equal(r_bf16, r_bf16_f32)
        check("(c) BF16 file (no prefix) = F32 file of the bf16-rounded weights (transformer. prefix)", d == 0.0,
              f"max |diff| {d:.1e}")
        d = responses_equal(r_bf16, resp_for(bf16_sharded))
        check("(c) sharded BF16 (2 shards) = single BF16 file", d == 0.0, f"max |diff| {d:.1e}")
        d = responses_equal(r_bf16, resp)
        check("(c) BF16 numbers differ from F32 ones (the rounding is really applied)", d > 0.0,
              f"max |diff| {d:.1e}")
    except RuntimeError as e:
        check("(c) loading variants", False, str(e)[:300])
    return finish()


def finish():
    print(f"\nreference self-check: {len(PASSES)} passed, {len(FAILURES)} failed -> "
          f"{'PASS' if not FAILURES else 'FAIL'}", flush=True)
    for name in FAILURES:
        print(f"  failed: {name}")
    return 0 if not FAILURES else 1


if __name__ == "__main__":
    sys.exit(main())
