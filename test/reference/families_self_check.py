#!/usr/bin/python3
"""Self-check of test/reference/families_reference.py, independent of the TypeScript engine.

Builds tiny random models of every family in memory (seeded; 2 layers, d=16, vocab 40), and checks:

  (a)  every gradient attribution of every hook kind against a central finite difference of the metric N
       along (clean - corrupted) at that one component (gpt2_reference's procedure, float64, relative
       tolerance 1e-6): GPT-Neo with a local window shorter than the prompt, Llama with GQA and llama3 rope
       scaling, Qwen2 with biases, Granite with multipliers, GraniteMoE 4 experts top-2;
  (b)  structural identities that pin the forward passes down without the engine:
         grouped-query attention = multi-head attention with each kv head's weights repeated for its group;
         Granite with unit multipliers and attention_multiplier = 1/sqrt(d_head) = Llama on the same weights;
         GraniteMoE with one expert (top-1) = Granite's dense SwiGLU with gate/up = input_linear's halves;
         GraniteMoE with top_k = num_experts = the softmax-weighted sum of every expert, written as a loop;
         GPT-Neo local attention with a window >= the prompt = global attention;
         RoPE makes attention depend on relative positions only: shifting every position leaves logits equal;
         Llama 3 rope scaling keeps high frequencies, divides low ones by factor, blends between;
  (c)  the CLI: a sharded-free F32 and BF16 checkpoint written as safetensors by hand, the batched
       {"requests": [...]} protocol, and exit code 1 with a message for an unknown model_type.

Prints PASS/FAIL per check and a summary; exits 1 on any failure.
"""

import copy
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import families_reference as fam  # noqa: E402
import gpt2_reference as base  # noqa: E402
import self_check as gpt2_check  # noqa: E402  (helpers only; its checks run under its own main)

REFERENCE = os.path.join(HERE, "families_reference.py")
FAILURES = []
PASSES = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail else ""), flush=True)
    (PASSES if ok else FAILURES).append(name)


VOCAB = 40


def neo_model(seed, window=3, n_layer=2, d=16, n_head=4, n_pos=32):
    rng = np.random.default_rng(seed)
    w = lambda *shape, s=0.3: (s * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    t = {"transformer.wte.weight": w(VOCAB, d), "transformer.wpe.weight": w(n_pos, d, s=0.1),
         "transformer.ln_f.weight": 1 + w(d, s=0.1), "transformer.ln_f.bias": w(d, s=0.1)}
    for l in range(n_layer):
        p = f"transformer.h.{l}."
        t.update({p + "ln_1.weight": 1 + w(d, s=0.1), p + "ln_1.bias": w(d, s=0.1),
                  p + "attn.attention.q_proj.weight": w(d, d), p + "attn.attention.k_proj.weight": w(d, d),
                  p + "attn.attention.v_proj.weight": w(d, d), p + "attn.attention.out_proj.weight": w(d, d),
                  p + "attn.attention.out_proj.bias": w(d, s=0.1),
                  p + "ln_2.weight": 1 + w(d, s=0.1), p + "ln_2.bias": w(d, s=0.1),
                  p + "mlp.c_fc.weight": w(4 * d, d), p + "mlp.c_fc.bias": w(4 * d, s=0.1),
                  p + "mlp.c_proj.weight": w(d, 4 * d), p + "mlp.c_proj.bias": w(d, s=0.1)})
    cfg = {"model_type": "gpt_neo", "num_layers": n_layer, "num_heads": n_head, "hidden_size": d,
           "intermediate_size": None, "vocab_size": VOCAB, "max_position_embeddings": n_pos,
           "window_size": window, "attention_types": [[["global", "local"], n_layer // 2]],
           "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
    return cfg, t


def llama_model(seed, model_type="llama", n_head=4, n_kv=2, d=16, f=24, n_layer=2, tied=False,
                rope_scaling=None, multipliers=None, experts=None, bias=False):
    rng = np.random.default_rng(seed)
    w = lambda *shape, s=0.3: (s * rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    dh = d // n_head
    t = {"model.embed_tokens.weight": w(VOCAB, d, s=1.0), "model.norm.weight": 1 + w(d, s=0.1)}
    qkv_bias = model_type == "qwen2" or bias
    for l in range(n_layer):
        p = f"model.layers.{l}."
        t.update({p + "input_layernorm.weight": 1 + w(d, s=0.1), p + "post_attention_layernorm.weight": 1 + w(d, s=0.1),
                  p + "self_attn.q_proj.weight": w(n_head * dh, d), p + "self_attn.k_proj.weight": w(n_kv * dh, d),
                  p + "self_attn.v_proj.weight": w(n_kv * dh, d), p + "self_attn.o_proj.weight": w(d, n_head * dh)})
        if qkv_bias:
            t.update({p + "self_attn.q_proj.bias": w(n_head * dh), p + "self_attn.k_proj.bias": w(n_kv * dh),
                      p + "self_attn.v_proj.bias": w(n_kv * dh)})
        if experts:
            E = experts[0]
            t.update({p + "block_sparse_moe.router.layer.weight": w(E, d, s=1.0),
                      p + "block_sparse_moe.input_linear.weight": w(E, 2 * f, d),
                      p + "block_sparse_moe.output_linear.weight": w(E, d, f)})
        else:
            t.update({p + "mlp.gate_proj.weight": w(f, d), p + "mlp.up_proj.weight": w(f, d), p + "mlp.down_proj.weight": w(d, f)})
    if not tied:
        t["lm_head.weight"] = w(VOCAB, d, s=1.0)
    cfg = {"model_type": model_type, "num_hidden_layers": n_layer, "num_attention_heads": n_head,
           "num_key_value_heads": n_kv, "hidden_size": d, "intermediate_size": f, "vocab_size": VOCAB,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": rope_scaling,
           "tie_word_embeddings": tied, "hidden_act": "silu", "attention_bias": bias}
    if multipliers:
        cfg.update(zip(("embedding_multiplier", "attention_multiplier", "residual_multiplier", "logits_scaling"), multipliers))
    if experts:
        cfg.update({"num_local_experts": experts[0], "num_experts_per_tok": experts[1]})
    return cfg, t


def build(cfg, tensors):
    return fam.GPTNeo(cfg, tensors) if cfg["model_type"] == "gpt_neo" else fam.LlamaFamily(cfg, tensors)


def logits(model, ids, **kw):
    with torch.no_grad():
        return model.forward(torch.tensor([ids]), **kw)[0]


LLAMA3_SMALL = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16}
MULT = (3.0, 0.3, 0.5, 2.0)
FAMILIES = {
    "gpt_neo (local window 3)": neo_model(1, window=3),
    "llama (GQA 4/2, llama3 rope)": llama_model(2, rope_scaling=LLAMA3_SMALL),
    "qwen2 (biases, tied)": llama_model(3, model_type="qwen2", tied=True),
    "granite (multipliers)": llama_model(4, model_type="granite", multipliers=MULT),
    "granitemoe (4 experts top-2)": llama_model(5, model_type="granitemoe", multipliers=MULT, experts=(4, 2)),
}


def checks(tmp):
    examples = gpt2_check.make_examples(11, VOCAB, [7, 9])
    # (a) finite differences of the attributions
    for name, (cfg, tensors) in FAMILIES.items():
        run = base.Run(build(cfg, tensors), examples)
        attributions = run.attributions()
        summary = gpt2_check.finite_difference_check(run, attributions)
        worst = max(v[0] for v in summary.values())
        nontrivial = all(v[3] > 1e-6 for v in summary.values())
        check(f"(a) {name}: attributions = finite differences of N", worst < 1e-6 and nontrivial,
              ", ".join(f"{k} {v[0]:.1e}" for k, v in summary.items()))

    ids = examples[1]["cleanIds"]

    # (b) grouped-query attention = MHA with repeated kv weights
    cfg, t = llama_model(6, n_head=4, n_kv=2)
    mha_cfg, mha = dict(cfg, num_key_value_heads=4), dict(t)
    dh = cfg["hidden_size"] // 4
    for l in range(cfg["num_hidden_layers"]):
        for name in ("k_proj", "v_proj"):
            key = f"model.layers.{l}.self_attn.{name}.weight"
            heads = t[key].reshape(2, dh, -1)
            mha[key] = np.repeat(heads, 2, axis=0).reshape(4 * dh, -1)  # query head h reads kv head h // 2
    diff = float((logits(build(cfg, t), ids) - logits(build(mha_cfg, mha), ids)).abs().max())
    check("(b) GQA 4/2 equals MHA with kv heads repeated per group", diff < 1e-12, f"{diff:.1e}")

    # Granite with neutral multipliers = Llama
    cfg, t = llama_model(7)
    granite = dict(cfg, model_type="granite", embedding_multiplier=1.0, attention_multiplier=1 / math.sqrt(dh),
                   residual_multiplier=1.0, logits_scaling=1.0)
    diff = float((logits(build(cfg, t), ids) - logits(build(granite, t), ids)).abs().max())
    check("(b) Granite with unit multipliers and attention_multiplier 1/sqrt(d) equals Llama", diff < 1e-12, f"{diff:.1e}")
    # ... and the multipliers act where they should: logits_scaling divides, embedding_multiplier scales layer 0's input
    scaled = dict(granite, logits_scaling=4.0)
    diff = float((logits(build(granite, t), ids) / 4.0 - logits(build(scaled, t), ids)).abs().max())
    check("(b) Granite logits_scaling divides the logits", diff < 1e-12, f"{diff:.1e}")
    store = {}
    build(dict(granite, embedding_multiplier=3.0), t).forward(torch.tensor([ids]), hook=base.capture_hook(store))
    expected = torch.from_numpy(t["model.embed_tokens.weight"].astype(np.float64))[ids] * 3.0
    diff = float((store[("resid_pre", 0)][0] - expected).abs().max())
    check("(b) Granite resid_pre of layer 0 is the embedding times embedding_multiplier", diff < 1e-12, f"{diff:.1e}")
    store = {}
    m = build(dict(granite, residual_multiplier=0.5), t)
    m.forward(torch.tensor([ids]), hook=base.capture_hook(store))
    resid_post = store[("resid_pre", 0)] + store[("attn_out", 0)] + store[("mlp_out", 0)]
    diff = float((resid_post - store[("resid_pre", 1)]).abs().max())
    check("(b) attn_out and mlp_out are what is added to the residual stream (after residual_multiplier)", diff < 1e-12, f"{diff:.1e}")

    # GraniteMoE with one expert = dense Granite
    cfg, t = llama_model(8, model_type="granitemoe", multipliers=MULT, experts=(1, 1))
    dense_t = {k: v for k, v in t.items() if "block_sparse_moe" not in k}
    f = cfg["intermediate_size"]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w_in = t[p + "block_sparse_moe.input_linear.weight"][0]
        dense_t[p + "mlp.gate_proj.weight"] = w_in[:f]
        dense_t[p + "mlp.up_proj.weight"] = w_in[f:]
        dense_t[p + "mlp.down_proj.weight"] = t[p + "block_sparse_moe.output_linear.weight"][0]
    dense_cfg = {k: v for k, v in cfg.items() if k not in ("num_local_experts", "num_experts_per_tok")}
    dense_cfg["model_type"] = "granite"
    diff = float((logits(build(cfg, t), ids) - logits(build(dense_cfg, dense_t), ids)).abs().max())
    check("(b) GraniteMoE with one expert equals Granite with gate/up = input_linear halves", diff < 1e-12, f"{diff:.1e}")

    # GraniteMoE top_k = E = the softmax-weighted sum of every expert (an explicit loop)
    cfg, t = llama_model(9, model_type="granitemoe", multipliers=MULT, experts=(3, 3))
    model = build(cfg, t)
    p = model.layers[0]
    h = torch.randn(5, cfg["hidden_size"], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = model._moe(p, h.unsqueeze(0))[0]
    want = torch.zeros_like(h)
    for n in range(5):
        weights = torch.softmax(p["router"] @ h[n], dim=0)
        for e in range(3):
            hidden = p["experts_in"][e] @ h[n]
            act = torch.nn.functional.silu(hidden[:f]) * hidden[f:]
            want[n] += weights[e] * (p["experts_out"][e] @ act)
    diff = float((got - want).abs().max())
    check("(b) GraniteMoE with top_k = num_experts is the softmax-weighted sum of all experts", diff < 1e-12, f"{diff:.1e}")

    # GPT-Neo: a window at least the prompt's length is global attention; a shorter one is not
    cfg, t = neo_model(10, window=len(ids))
    everywhere_global = dict(cfg, attention_types=[[["global", "global"], 1]])
    diff = float((logits(build(cfg, t), ids) - logits(build(everywhere_global, t), ids)).abs().max())
    short = float((logits(build(dict(cfg, window_size=2), t), ids) - logits(build(everywhere_global, t), ids)).abs().max())
    check("(b) GPT-Neo local attention with window >= prompt equals global; a short window differs", diff < 1e-12 and short > 1e-6,
          f"{diff:.1e}, {short:.1e}")

    # RoPE: relative positions only
    for name in ("llama (GQA 4/2, llama3 rope)", "qwen2 (biases, tied)"):
        model = build(*FAMILIES[name])
        diff = float((logits(model, ids) - logits(model, ids, position_offset=13)).abs().max())
        check(f"(b) {name}: shifting every position leaves the logits unchanged (RoPE is relative)", diff < 1e-10, f"{diff:.1e}")

    # Llama 3 rope scaling at Llama 3.2's parameters
    scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    plain = fam.rope_inverse_frequencies(64, 500000.0, None)
    scaled = fam.rope_inverse_frequencies(64, 500000.0, scaling)
    wavelen = 2 * math.pi / plain
    high, low = wavelen < 2048, wavelen > 8192
    mid = ~high & ~low
    ok = bool(torch.equal(scaled[high], plain[high])) and bool(torch.allclose(scaled[low], plain[low] / 32, rtol=1e-15))
    ok = ok and bool(mid.any()) and bool(((scaled[mid] < plain[mid]) & (scaled[mid] > plain[mid] / 32)).all())
    check("(b) llama3 rope scaling: high frequencies kept, low ones / factor, blended between", ok,
          f"{int(high.sum())} high, {int(mid.sum())} blended, {int(low.sum())} low")

    # (c) the CLI, from files
    requests = []
    for i, (name, (cfg, tensors)) in enumerate(FAMILIES.items()):
        for dtype in ("F32", "BF16"):
            directory = os.path.join(tmp, f"m{i}-{dtype}")
            os.makedirs(directory)
            gpt2_check.write_safetensors(os.path.join(directory, "model.safetensors"), tensors, dtype=dtype)
            with open(os.path.join(directory, "config.json"), "w") as fh:
                json.dump(cfg, fh)
            requests.append((name, dtype, cfg, tensors, {"modelDir": directory, "examples": examples}))
    proc = subprocess.run([sys.executable, REFERENCE], input=json.dumps({"requests": [r[4] for r in requests]}),
                          capture_output=True, text=True)
    responses = json.loads(proc.stdout)["responses"] if proc.returncode == 0 else []
    check("(c) CLI answers a batch of requests", proc.returncode == 0 and len(responses) == len(requests), proc.stderr[-300:])
    for (name, dtype, cfg, tensors, _), response in zip(requests, responses):
        stored = tensors if dtype == "F32" else {k: gpt2_check.bf16_round(v) for k, v in tensors.items()}
        direct = base.Run(build(cfg, stored), examples)
        diff = max(abs(a - b) for a, b in zip(response["cleanLogitDiffs"] + response["corruptedLogitDiffs"],
                                                direct.clean_lds + direct.corr_lds))
        check(f"(c) {name}, {dtype} file: CLI logit differences equal the in-memory model's", diff < 1e-12, f"{diff:.1e}")
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    with open(os.path.join(bad, "config.json"), "w") as fh:
        json.dump({"model_type": "mamba"}, fh)
    proc = subprocess.run([sys.executable, REFERENCE], input=json.dumps({"modelDir": bad, "examples": examples}),
                          capture_output=True, text=True)
    check("(c) an unknown model_type exits 1 with a message", proc.returncode == 1 and "mamba" in proc.stderr, proc.stderr.strip())


def main():
    torch.manual_seed(0)
    tmp = tempfile.mkdtemp(prefix="families_ref_selfcheck_")
    try:
        checks(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = not FAILURES
    print(f"families reference self-check: {len(PASSES)} passed, {len(FAILURES)} failed -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
