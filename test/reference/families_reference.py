#!/usr/bin/python3
"""Independent dev-time reference for attribution patching on every supported model family (PyTorch, float64).

Same stdin/stdout JSON protocol as gpt2_reference.py (see there), dispatched on config.json's model_type:

  gpt2                                   gpt2_reference.GPT2
  gpt_neo                                GPTNeo      (TinyStories, TinySQL BM1)
  llama, qwen2, granite, granitemoe      LlamaFamily (Llama 3.2, SmolLM, Qwen2.5, Granite 3.0, GraniteMoE)

A request may also be {"requests": [request, ...]}, answered by {"responses": [response, ...]}, so that one
interpreter start serves several models.

The forward passes are written out by hand, in float64, from Hugging Face's modelling semantics
(modeling_gpt_neo.py, modeling_llama.py, modeling_qwen2.py, modeling_granite.py, modeling_granitemoe.py),
one example at a time, without padding, and deliberately in a different style from the engine:

  GPT-Neo     nn.Linear weights [out, in] (x @ W.T), q/k/v without bias, out_proj with bias, NO 1/sqrt(d)
              scaling, a boolean causal mask that for "local" layers also drops keys >= window_size back,
              gelu_new MLP, LayerNorm, learned positions, unembedding tied to wte (or lm_head when untied).
  Llama       RMSNorm (x * rsqrt(mean(x^2) + eps) * w), RoPE in the rotate-half convention with inverse
              frequencies theta^(-2i/d) and "llama3"/"linear" scaling, grouped-query attention by
              repeat_interleave of the key/value heads, SwiGLU MLP down(silu(gate(x)) * up(x)).
  Qwen2       q/k/v biases.
  Granite     embeddings * embedding_multiplier; scores * attention_multiplier (instead of 1/sqrt(d));
              attn and MLP outputs * residual_multiplier before the residual add (the attn_out/mlp_out hooks
              are AFTER the multiplier: what is added to the residual stream); logits / logits_scaling.
  GraniteMoE  Granite whose MLP is a mixture of experts computed sparsely, token by token: router logits,
              torch.topk, softmax over the k selected logits, each selected expert's SwiGLU
              (input_linear [E, 2*ffn, d] -> first half gate, second half up; output_linear [E, d, ffn]),
              weighted by its gate and summed.
"""

import json
import math
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_reference as base  # noqa: E402

ReferenceError = base.ReferenceError
LLAMA_FAMILY = ("llama", "qwen2", "granite", "granitemoe")


def _tensor(arr, dtype):
    return torch.from_numpy(np.array(arr, dtype=np.float64)).to(dtype)


class Weights:
    """Named tensors with shape checks; accepts names with or without a 'transformer.' prefix."""

    def __init__(self, tensors, where, dtype=torch.float64):
        self.tensors = tensors
        self.where = where
        self.dtype = dtype

    def has(self, name):
        return name in self.tensors or ("transformer." + name) in self.tensors

    def __call__(self, name, shape):
        arr = self.tensors.get(name)
        if arr is None:
            arr = self.tensors.get("transformer." + name)
        if arr is None:
            raise ReferenceError(f"{self.where}: tensor {name} not found")
        if tuple(arr.shape) != tuple(shape):
            raise ReferenceError(f"{self.where}: tensor {name} has shape {list(arr.shape)}, expected {list(shape)}")
        return _tensor(arr, self.dtype)


class Model:
    """What Run in gpt2_reference.py needs: n_layer, n_head, vocab, n_positions, check_ids, forward."""

    def check_ids(self, ids, what):
        if not isinstance(ids, list) or len(ids) == 0:
            raise ReferenceError(f"{what}: expected a non-empty list of token ids")
        if len(ids) > self.n_positions:
            raise ReferenceError(f"{what}: {len(ids)} tokens exceed {self.n_positions} positions")
        for t in ids:
            if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t >= self.vocab:
                raise ReferenceError(f"{what}: token id {t!r} is not in [0, {self.vocab})")

    @staticmethod
    def _last(x, last_index):
        B, T = x.shape[0], x.shape[1]
        if last_index is None:
            return x[:, T - 1, :]
        return x[torch.arange(B), last_index, :]


def _layer_norm(x, w, b, eps):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


# ---------------------------------------------------------------------------------------------
# GPT-Neo

class GPTNeo(Model):
    def __init__(self, cfg, tensors, where="model", dtype=torch.float64):
        self.n_layer = int(cfg["num_layers"])
        self.n_head = int(cfg["num_heads"])
        self.d = int(cfg["hidden_size"])
        self.d_head = self.d // self.n_head
        self.d_mlp = int(cfg.get("intermediate_size") or 4 * self.d)
        self.vocab = int(cfg["vocab_size"])
        self.n_positions = int(cfg["max_position_embeddings"])
        self.eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.window = int(cfg.get("window_size", 256))
        act = cfg.get("activation_function", "gelu_new")
        if act not in base.ACTIVATIONS:
            raise ReferenceError(f"unsupported activation_function {act!r}")
        self.act = base.ACTIVATIONS[act]
        layers = []
        for kinds, repeat in cfg["attention_types"]:
            for _ in range(repeat):
                layers.extend(kinds)
        if len(layers) != self.n_layer:
            raise ReferenceError("attention_types does not match num_layers")
        self.attention_layers = layers
        get = Weights(tensors, where, dtype)
        d, dm = self.d, self.d_mlp
        self.wte = get("wte.weight", (self.vocab, d))
        self.wpe = get("wpe.weight", (self.n_positions, d))
        self.layers = []
        for l in range(self.n_layer):
            p = f"h.{l}."
            a = p + "attn.attention."
            self.layers.append({
                "ln_1": (get(p + "ln_1.weight", (d,)), get(p + "ln_1.bias", (d,))),
                "q": get(a + "q_proj.weight", (d, d)), "k": get(a + "k_proj.weight", (d, d)),
                "v": get(a + "v_proj.weight", (d, d)),
                "o": get(a + "out_proj.weight", (d, d)), "o_b": get(a + "out_proj.bias", (d,)),
                "ln_2": (get(p + "ln_2.weight", (d,)), get(p + "ln_2.bias", (d,))),
                "fc": get(p + "mlp.c_fc.weight", (dm, d)), "fc_b": get(p + "mlp.c_fc.bias", (dm,)),
                "proj": get(p + "mlp.c_proj.weight", (d, dm)), "proj_b": get(p + "mlp.c_proj.bias", (d,)),
            })
        self.ln_f = (get("ln_f.weight", (d,)), get("ln_f.bias", (d,)))
        tie = cfg.get("tie_word_embeddings", True)
        self.w_u = get("lm_head.weight", (self.vocab, d)) if (not tie and get.has("lm_head.weight")) else self.wte

    def forward(self, ids, hook=None, last_index=None, input_requires_grad=False):
        B, T = ids.shape
        H, dh, d = self.n_head, self.d_head, self.d
        x = self.wte[ids] + self.wpe[:T].unsqueeze(0)
        if input_requires_grad:
            x = x.detach().requires_grad_(True)
        i = torch.arange(T).unsqueeze(1)
        j = torch.arange(T).unsqueeze(0)
        allowed = {"global": j <= i, "local": (j <= i) & (i - j < self.window)}
        for l, p in enumerate(self.layers):
            if hook is not None:
                x = hook("resid_pre", l, x)
            h = _layer_norm(x, *p["ln_1"], self.eps)
            heads = lambda w: (h @ w.T).reshape(B, T, H, dh).transpose(1, 2)  # noqa: E731
            q, k, v = heads(p["q"]), heads(p["k"]), heads(p["v"])
            scores = (q @ k.transpose(-1, -2)).masked_fill(~allowed[self.attention_layers[l]], float("-inf"))
            z = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)
            if hook is not None:
                z = hook("z", l, z)
            attn_out = z.reshape(B, T, d) @ p["o"].T + p["o_b"]
            if hook is not None:
                attn_out = hook("attn_out", l, attn_out)
            x = x + attn_out
            h2 = _layer_norm(x, *p["ln_2"], self.eps)
            mlp_out = self.act(h2 @ p["fc"].T + p["fc_b"]) @ p["proj"].T + p["proj_b"]
            if hook is not None:
                mlp_out = hook("mlp_out", l, mlp_out)
            x = x + mlp_out
        last = _layer_norm(self._last(x, last_index), *self.ln_f, self.eps)
        return last @ self.w_u.T


# ---------------------------------------------------------------------------------------------
# Llama, Qwen2, Granite, GraniteMoE

def rope_inverse_frequencies(d_head, theta, scaling):
    """theta^(-2i/d) for i < d/2, with Hugging Face's "linear" or "llama3" rope scaling, in float64."""
    inv = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.float64) / d_head))
    if scaling is None:
        return inv
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / float(scaling["factor"])
    if kind != "llama3":
        raise ReferenceError(f"unsupported rope scaling {kind!r}")
    factor = float(scaling["factor"])
    low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return torch.where(medium, smoothed, scaled)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaFamily(Model):
    def __init__(self, cfg, tensors, where="model", dtype=torch.float64):
        mt = cfg["model_type"]
        if mt not in LLAMA_FAMILY:
            raise ReferenceError(f"model_type {mt!r} is not in the Llama family")
        self.model_type = mt
        self.n_layer = int(cfg["num_hidden_layers"])
        self.n_head = int(cfg["num_attention_heads"])
        self.n_kv = int(cfg.get("num_key_value_heads") or self.n_head)
        self.d = int(cfg["hidden_size"])
        granite = mt in ("granite", "granitemoe")
        self.d_head = int(cfg["head_dim"]) if (not granite and cfg.get("head_dim")) else self.d // self.n_head
        self.d_mlp = int(cfg["intermediate_size"])
        self.vocab = int(cfg["vocab_size"])
        self.n_positions = int(cfg["max_position_embeddings"])
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        if cfg.get("hidden_act", "silu") != "silu":
            raise ReferenceError("hidden_act must be silu")
        self.embedding_multiplier = float(cfg.get("embedding_multiplier", 1.0)) if granite else 1.0
        self.residual_multiplier = float(cfg.get("residual_multiplier", 1.0)) if granite else 1.0
        self.logits_scaling = float(cfg.get("logits_scaling", 1.0)) if granite else 1.0
        self.scale = float(cfg.get("attention_multiplier", 1.0)) if granite else self.d_head ** -0.5
        attention_bias = bool(cfg.get("attention_bias", False))
        qkv_bias = mt == "qwen2" or attention_bias
        o_bias = mt != "qwen2" and attention_bias
        mlp_bias = mt in ("llama", "granite") and bool(cfg.get("mlp_bias", False))
        self.inv_freq = rope_inverse_frequencies(self.d_head, float(cfg.get("rope_theta", 10000.0)), cfg.get("rope_scaling"))
        self.moe = None
        if mt == "granitemoe":
            self.moe = (int(cfg["num_local_experts"]), int(cfg["num_experts_per_tok"]))

        get = Weights(tensors, where, dtype)
        opt = lambda name, shape, present: get(name, shape) if present else None  # noqa: E731
        d, f, H, K, dh = self.d, self.d_mlp, self.n_head, self.n_kv, self.d_head
        self.embed = get("model.embed_tokens.weight", (self.vocab, d))
        self.layers = []
        for l in range(self.n_layer):
            p = f"model.layers.{l}."
            a = p + "self_attn."
            layer = {
                "in_norm": get(p + "input_layernorm.weight", (d,)),
                "q": get(a + "q_proj.weight", (H * dh, d)), "q_b": opt(a + "q_proj.bias", (H * dh,), qkv_bias),
                "k": get(a + "k_proj.weight", (K * dh, d)), "k_b": opt(a + "k_proj.bias", (K * dh,), qkv_bias),
                "v": get(a + "v_proj.weight", (K * dh, d)), "v_b": opt(a + "v_proj.bias", (K * dh,), qkv_bias),
                "o": get(a + "o_proj.weight", (d, H * dh)), "o_b": opt(a + "o_proj.bias", (d,), o_bias),
                "post_norm": get(p + "post_attention_layernorm.weight", (d,)),
            }
            if self.moe:
                E = self.moe[0]
                m = p + "block_sparse_moe."
                layer["router"] = get(m + "router.layer.weight", (E, d))
                layer["experts_in"] = get(m + "input_linear.weight", (E, 2 * f, d))
                layer["experts_out"] = get(m + "output_linear.weight", (E, d, f))
            else:
                layer["gate"] = get(p + "mlp.gate_proj.weight", (f, d))
                layer["gate_b"] = opt(p + "mlp.gate_proj.bias", (f,), mlp_bias)
                layer["up"] = get(p + "mlp.up_proj.weight", (f, d))
                layer["up_b"] = opt(p + "mlp.up_proj.bias", (f,), mlp_bias)
                layer["down"] = get(p + "mlp.down_proj.weight", (d, f))
                layer["down_b"] = opt(p + "mlp.down_proj.bias", (d,), mlp_bias)
            self.layers.append(layer)
        self.norm = get("model.norm.weight", (d,))
        tie = bool(cfg.get("tie_word_embeddings", False))
        self.w_u = self.embed if tie else get("lm_head.weight", (self.vocab, d))

    @staticmethod
    def _linear(x, w, b):
        y = x @ w.T
        return y if b is None else y + b

    def _moe(self, p, h):
        E, k = self.moe
        f = self.d_mlp
        router = h @ p["router"].T                             # [B, T, E]
        top_logits, top_idx = torch.topk(router, k, dim=-1)    # [B, T, k]
        gates = torch.softmax(top_logits, dim=-1)
        w_in = p["experts_in"][top_idx]                        # [B, T, k, 2f, d]
        w_out = p["experts_out"][top_idx]                      # [B, T, k, d, f]
        hidden = torch.einsum("btkod,btd->btko", w_in, h)      # [B, T, k, 2f]
        act = F.silu(hidden[..., :f]) * hidden[..., f:]
        out = torch.einsum("btkdf,btkf->btkd", w_out, act)     # [B, T, k, d]
        return (out * gates.unsqueeze(-1)).sum(dim=2)

    def forward(self, ids, hook=None, last_index=None, input_requires_grad=False, position_offset=0):
        B, T = ids.shape
        H, K, dh = self.n_head, self.n_kv, self.d_head
        x = self.embed[ids] * self.embedding_multiplier
        if input_requires_grad:
            x = x.detach().requires_grad_(True)
        angles = torch.outer(torch.arange(T, dtype=torch.float64) + position_offset, self.inv_freq)
        angles = torch.cat((angles, angles), dim=-1)           # [T, dh]
        # In the model's dtype, so a float32 model (bench/torch_baseline.py) stays float32.
        cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
        allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for l, p in enumerate(self.layers):
            if hook is not None:
                x = hook("resid_pre", l, x)
            h = _rms_norm(x, p["in_norm"], self.eps)
            q = self._linear(h, p["q"], p["q_b"]).reshape(B, T, H, dh).transpose(1, 2)
            k = self._linear(h, p["k"], p["k_b"]).reshape(B, T, K, dh).transpose(1, 2)
            v = self._linear(h, p["v"], p["v_b"]).reshape(B, T, K, dh).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            k = torch.repeat_interleave(k, H // K, dim=1)
            v = torch.repeat_interleave(v, H // K, dim=1)
            scores = ((q @ k.transpose(-1, -2)) * self.scale).masked_fill(~allowed, float("-inf"))
            z = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)   # [B, T, H, dh]
            if hook is not None:
                z = hook("z", l, z)
            attn_out = self._linear(z.reshape(B, T, H * dh), p["o"], p["o_b"]) * self.residual_multiplier
            if hook is not None:
                attn_out = hook("attn_out", l, attn_out)
            x = x + attn_out
            h2 = _rms_norm(x, p["post_norm"], self.eps)
            if self.moe:
                mlp = self._moe(p, h2)
            else:
                gate = self._linear(h2, p["gate"], p["gate_b"])
                mlp = self._linear(F.silu(gate) * self._linear(h2, p["up"], p["up_b"]), p["down"], p["down_b"])
            mlp_out = mlp * self.residual_multiplier
            if hook is not None:
                mlp_out = hook("mlp_out", l, mlp_out)
            x = x + mlp_out
        last = _rms_norm(self._last(x, last_index), self.norm, self.eps)
        return (last @ self.w_u.T) / self.logits_scaling


# ---------------------------------------------------------------------------------------------
# dispatch

def load_model(model_dir):
    cfg_path = os.path.join(model_dir, "config.json")
    if not os.path.exists(cfg_path):
        raise ReferenceError(f"{model_dir}: config.json not found")
    with open(cfg_path) as f:
        cfg = json.load(f)
    model_type = cfg.get("model_type")
    if model_type == "gpt2":
        return base.GPT2(model_dir)
    if model_type == "gpt_neo":
        return GPTNeo(cfg, base.read_checkpoint(model_dir), model_dir)
    if model_type in LLAMA_FAMILY:
        return LlamaFamily(cfg, base.read_checkpoint(model_dir), model_dir)
    raise ReferenceError(f"{model_dir}: model_type {model_type!r} is not supported by the reference")


def respond(model, request):
    examples = request.get("examples")
    if not isinstance(examples, list):
        raise ReferenceError("request.examples must be a list")
    run = base.Run(model, examples)
    response = {
        "cleanLogitDiffs": run.clean_lds,
        "corruptedLogitDiffs": run.corr_lds,
        "cleanLogitDiff": run.ld_clean,
        "corruptedLogitDiff": run.ld_corr,
        "attributions": base.to_lists(run.attributions()),
    }
    if request.get("activationPatching"):
        response["activationPatching"] = base.to_lists(run.activation_patching())
    if request.get("returnLogits"):
        response["cleanLastLogits"] = [t.tolist() for t in run.clean_logits]
        response["corruptedLastLogits"] = [t.tolist() for t in run.corr_logits]
    return response


def handle(request):
    if not isinstance(request, dict):
        raise ReferenceError("request must be a JSON object")
    if "requests" in request:
        if not isinstance(request["requests"], list):
            raise ReferenceError("request.requests must be a list")
        return {"responses": [handle(r) for r in request["requests"]]}
    model_dir = request.get("modelDir")
    if not isinstance(model_dir, str):
        raise ReferenceError("request.modelDir must be a string")
    return respond(load_model(model_dir), request)


def main():
    try:
        request = json.loads(sys.stdin.read())
        out = json.dumps(handle(request), allow_nan=False)
    except (ReferenceError, ValueError, KeyError, TypeError, OSError) as e:
        sys.stderr.write(f"families_reference: {type(e).__name__}: {e}\n")
        return 1
    sys.stdout.write(out)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
