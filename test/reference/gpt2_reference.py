#!/usr/bin/python3
"""Independent dev-time reference for attribution patching on GPT-2 (PyTorch, float64).

Reads a JSON request on stdin and writes a JSON response on stdout:

  request  = {"modelDir": "/abs/dir",
              "examples": [{"cleanIds": [...], "corruptedIds": [...],
                            "correctId": int, "incorrectId": int}, ...],
              "returnLogits": false, "activationPatching": false}

  response = {"cleanLogitDiffs": [LD_i(clean)], "corruptedLogitDiffs": [LD_i(corrupted)],
              "cleanLogitDiff": mean, "corruptedLogitDiff": mean,
              "attributions": {"z": [ex][layer][pos][head],
                               "resid_pre" | "attn_out" | "mlp_out": [ex][layer][pos]},
              "activationPatching": {same keys and shapes}        (only when requested)
              "cleanLastLogits": [ex][vocab], "corruptedLastLogits": [ex][vocab]
                                                                  (only when returnLogits)}

Errors: a message on stderr and exit code 1.

The model is read from a Hugging Face GPT-2 directory (config.json plus model.safetensors
or a sharded model.safetensors.index.json); safetensors is parsed by hand (no external
package) and the forward pass is written out following Hugging Face's GPT2Model semantics.
Everything is computed in float64, one example at a time, without padding.

Definitions (TransformerLens hook names):
  LD_i = logit(correct) - logit(incorrect) at the last position of example i.
  N    = (mean_i LD_i - LD_corr) / (LD_clean - LD_corr), LD_clean/LD_corr held constant.
  attribution_i[hook] = sum_hidden grad_N(corrupted act) * (clean act - corrupted act),
                        i.e. grad LD_i / (n * (LD_clean - LD_corr)) dotted with the difference.
  activationPatching_i[hook][component] = (LD_i(corrupted, component := clean) - LD_i(corrupted))
                                          / (n * (LD_clean - LD_corr)).
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

HOOK_KINDS = ("z", "resid_pre", "attn_out", "mlp_out")


class ReferenceError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# safetensors, parsed by hand

def _bf16_to_f32(raw):
    u16 = np.frombuffer(raw, dtype="<u2")
    return (u16.astype(np.uint32) << 16).view(np.float32)


_NUMPY_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path, wanted=None):
    """Returns {name: numpy array (float32/float64/...)} for the tensors of one safetensors file.

    F32, F16 and BF16 (converted to float32 exactly via uint16 << 16) are supported, plus F64
    and the integer types. `wanted` (a set of names) limits which tensors are decoded.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ReferenceError(f"{path}: too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > 100 * 1024 * 1024:
            raise ReferenceError(f"{path}: implausible safetensors header length {header_len}")
        header = json.loads(f.read(header_len).decode("utf-8"))
    base = 8 + header_len
    file_size = os.path.getsize(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if wanted is not None and name not in wanted:
            continue
        dtype = info["dtype"]
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(v) for v in info["data_offsets"])
        if base + end > file_size or begin > end:
            raise ReferenceError(f"{path}: tensor {name} lies outside the file")
        raw = data[base + begin: base + end].tobytes()
        count = int(np.prod(shape)) if shape else 1
        if dtype == "BF16":
            arr = _bf16_to_f32(raw)
        elif dtype in _NUMPY_DTYPES:
            arr = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype])
        else:
            raise ReferenceError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if arr.size != count:
            raise ReferenceError(f"{path}: tensor {name} has {arr.size} elements, shape {shape} needs {count}")
        out[name] = arr.reshape(shape)
    return out


def read_checkpoint(model_dir):
    """All tensors of a Hugging Face checkpoint directory (single file or sharded index)."""
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        by_file = {}
        for name, file in weight_map.items():
            by_file.setdefault(file, set()).add(name)
        tensors = {}
        for file, names in sorted(by_file.items()):
            part = read_safetensors(os.path.join(model_dir, file), names)
            missing = names - set(part)
            if missing:
                raise ReferenceError(f"{file}: missing tensors listed in the index: {sorted(missing)[:5]}")
            tensors.update(part)
        return tensors
    raise ReferenceError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json found")


# ---------------------------------------------------------------------------------------------
# model

def _gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _gelu_fast(x):
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": _gelu_new,
    "gelu": _gelu_erf,
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": torch.relu,
}


class GPT2:
    """GPT-2 weights as torch tensors of one dtype (float64 for the reference)."""

    def __init__(self, model_dir, dtype=torch.float64):
        cfg_path = os.path.join(model_dir, "config.json")
        if not os.path.exists(cfg_path):
            raise ReferenceError(f"{model_dir}: config.json not found")
        with open(cfg_path) as f:
            cfg = json.load(f)
        model_type = cfg.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ReferenceError(f"{model_dir}: model_type {model_type!r} is not gpt2")
        self.n_layer = int(cfg["n_layer"])
        self.n_head = int(cfg["n_head"])
        self.d = int(cfg["n_embd"])
        self.n_positions = int(cfg.get("n_positions", 1024))
        self.vocab = int(cfg["vocab_size"])
        self.eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.d_mlp = int(cfg.get("n_inner") or 4 * self.d)
        act = cfg.get("activation_function", "gelu_new")
        if act not in ACTIVATIONS:
            raise ReferenceError(f"unsupported activation_function {act!r}")
        self.act = ACTIVATIONS[act]
        if self.d % self.n_head != 0:
            raise ReferenceError(f"n_embd {self.d} is not divisible by n_head {self.n_head}")
        self.d_head = self.d // self.n_head
        self.scale_attn_weights = bool(cfg.get("scale_attn_weights", True))
        self.scale_by_inverse_layer_idx = bool(cfg.get("scale_attn_by_inverse_layer_idx", False))
        tie = cfg.get("tie_word_embeddings", True)
        self.dtype = dtype

        raw = read_checkpoint(model_dir)
        tensors = {}
        for name, arr in raw.items():
            key = name[len("transformer."):] if name.startswith("transformer.") else name
            tensors[key] = arr

        def get(name, shape):
            if name not in tensors:
                raise ReferenceError(f"{model_dir}: tensor {name} (or transformer.{name}) not found")
            arr = tensors[name]
            if tuple(arr.shape) != tuple(shape):
                raise ReferenceError(f"{model_dir}: tensor {name} has shape {list(arr.shape)}, expected {list(shape)}")
            t = torch.from_numpy(np.array(arr, dtype=np.float64 if dtype == torch.float64 else np.float32))
            return t.to(dtype)

        d, dm = self.d, self.d_mlp
        self.wte = get("wte.weight", (self.vocab, d))
        self.wpe = get("wpe.weight", (self.n_positions, d))
        self.layers = []
        for l in range(self.n_layer):
            p = f"h.{l}."
            self.layers.append({
                "ln_1.w": get(p + "ln_1.weight", (d,)), "ln_1.b": get(p + "ln_1.bias", (d,)),
                "c_attn.w": get(p + "attn.c_attn.weight", (d, 3 * d)), "c_attn.b": get(p + "attn.c_attn.bias", (3 * d,)),
                "attn.c_proj.w": get(p + "attn.c_proj.weight", (d, d)), "attn.c_proj.b": get(p + "attn.c_proj.bias", (d,)),
                "ln_2.w": get(p + "ln_2.weight", (d,)), "ln_2.b": get(p + "ln_2.bias", (d,)),
                "c_fc.w": get(p + "mlp.c_fc.weight", (d, dm)), "c_fc.b": get(p + "mlp.c_fc.bias", (dm,)),
                "mlp.c_proj.w": get(p + "mlp.c_proj.weight", (dm, d)), "mlp.c_proj.b": get(p + "mlp.c_proj.bias", (d,)),
            })
        self.ln_f_w = get("ln_f.weight", (d,))
        self.ln_f_b = get("ln_f.bias", (d,))
        if not tie and "lm_head.weight" in tensors:
            self.w_u = get("lm_head.weight", (self.vocab, d))
        else:
            self.w_u = self.wte
        causal = torch.tril(torch.ones(self.n_positions, self.n_positions, dtype=torch.bool))
        self._causal = causal

    def layer_norm(self, x, w, b):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * w + b

    def check_ids(self, ids, what):
        if not isinstance(ids, list) or len(ids) == 0:
            raise ReferenceError(f"{what}: expected a non-empty list of token ids")
        if len(ids) > self.n_positions:
            raise ReferenceError(f"{what}: {len(ids)} tokens exceed n_positions {self.n_positions}")
        for t in ids:
            if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t >= self.vocab:
                raise ReferenceError(f"{what}: token id {t!r} is not in [0, {self.vocab})")

    def forward(self, ids, hook=None, last_index=None, input_requires_grad=False):
        """ids: LongTensor [B, T]. Returns logits at one position per row: [B, vocab].

        hook(kind, layer, act) -> act is called at every hook point; kinds:
          resid_pre [B, T, d], z [B, T, H, d_head], attn_out [B, T, d], mlp_out [B, T, d].
        last_index: LongTensor [B] of the positions whose logits are returned (default T-1).
        """
        B, T = ids.shape
        H, dh, d = self.n_head, self.d_head, self.d
        x = self.wte[ids] + self.wpe[:T].unsqueeze(0)
        if input_requires_grad:
            x = x.detach().requires_grad_(True)
        mask = self._causal[:T, :T]
        for l, p in enumerate(self.layers):
            if hook is not None:
                x = hook("resid_pre", l, x)
            h = self.layer_norm(x, p["ln_1.w"], p["ln_1.b"])
            qkv = h @ p["c_attn.w"] + p["c_attn.b"]
            q, k, v = qkv.split(d, dim=-1)
            q = q.reshape(B, T, H, dh).transpose(1, 2)  # [B, H, T, dh]
            k = k.reshape(B, T, H, dh).transpose(1, 2)
            v = v.reshape(B, T, H, dh).transpose(1, 2)
            scores = q @ k.transpose(-1, -2)
            if self.scale_attn_weights:
                scores = scores / math.sqrt(dh)
            if self.scale_by_inverse_layer_idx:
                scores = scores / float(l + 1)
            scores = scores.masked_fill(~mask, float("-inf"))
            pattern = torch.softmax(scores, dim=-1)
            z = (pattern @ v).transpose(1, 2)  # [B, T, H, dh]
            if hook is not None:
                z = hook("z", l, z)
            attn_out = z.reshape(B, T, d) @ p["attn.c_proj.w"] + p["attn.c_proj.b"]
            if hook is not None:
                attn_out = hook("attn_out", l, attn_out)
            x = x + attn_out
            h2 = self.layer_norm(x, p["ln_2.w"], p["ln_2.b"])
            mlp_out = self.act(h2 @ p["c_fc.w"] + p["c_fc.b"]) @ p["mlp.c_proj.w"] + p["mlp.c_proj.b"]
            if hook is not None:
                mlp_out = hook("mlp_out", l, mlp_out)
            x = x + mlp_out
        if last_index is None:
            last = x[:, T - 1, :]
        else:
            last = x[torch.arange(B), last_index, :]
        last = self.layer_norm(last, self.ln_f_w, self.ln_f_b)
        return last @ self.w_u.T


# ---------------------------------------------------------------------------------------------
# attribution patching

def capture_hook(store):
    def hook(kind, layer, act):
        store[(kind, layer)] = act
        return act
    return hook


def replace_hook(kind, layer, mask, source):
    """Replaces act by `source` where `mask` is true, at one hook point only."""
    def hook(k, l, act):
        if k == kind and l == layer:
            return torch.where(mask, source, act)
        return act
    return hook


def component_masks(kind, T, H):
    """Masks selecting one component per batch row: [T*H, T, H, 1] for z (row = pos*H + head),
    [T, T, 1] otherwise (row = pos)."""
    if kind == "z":
        return torch.eye(T * H, dtype=torch.bool).reshape(T * H, T, H, 1)
    return torch.eye(T, dtype=torch.bool).reshape(T, T, 1)


def logit_diff(logits, correct, incorrect):
    return logits[..., correct] - logits[..., incorrect]


class Run:
    """Clean and corrupted forward passes and the metric's constants for a request."""

    def __init__(self, model, examples):
        self.model = model
        self.examples = []
        for i, ex in enumerate(examples):
            for key in ("cleanIds", "corruptedIds", "correctId", "incorrectId"):
                if key not in ex:
                    raise ReferenceError(f"examples[{i}]: field {key!r} is missing")
            model.check_ids(ex["cleanIds"], f"examples[{i}].cleanIds")
            model.check_ids(ex["corruptedIds"], f"examples[{i}].corruptedIds")
            if len(ex["cleanIds"]) != len(ex["corruptedIds"]):
                raise ReferenceError(f"examples[{i}]: clean and corrupted ids differ in length "
                                     f"({len(ex['cleanIds'])} vs {len(ex['corruptedIds'])})")
            model.check_ids([ex["correctId"], ex["incorrectId"]], f"examples[{i}] answer ids")
            self.examples.append(ex)
        if not self.examples:
            raise ReferenceError("no examples")
        self.n = len(self.examples)
        self.clean_acts = []
        self.corr_acts = []
        self.clean_logits = []
        self.corr_logits = []
        self.clean_lds = []
        self.corr_lds = []
        with torch.no_grad():
            for ex in self.examples:
                for ids_key, acts, logits, lds in (
                        ("cleanIds", self.clean_acts, self.clean_logits, self.clean_lds),
                        ("corruptedIds", self.corr_acts, self.corr_logits, self.corr_lds)):
                    store = {}
                    out = model.forward(torch.tensor([ex[ids_key]]), hook=capture_hook(store))[0]
                    acts.append({k: v[0] for k, v in store.items()})
                    logits.append(out)
                    lds.append(float(logit_diff(out, ex["correctId"], ex["incorrectId"])))
        self.ld_clean = float(np.mean(self.clean_lds))
        self.ld_corr = float(np.mean(self.corr_lds))
        self.denom = self.ld_clean - self.ld_corr
        if not math.isfinite(self.denom) or self.denom == 0.0:
            raise ReferenceError(f"LD_clean - LD_corr is {self.denom}: the normalised metric is undefined")
        self.scale = 1.0 / (self.n * self.denom)

    def attributions(self):
        """[kind][example][layer][pos](+[head]) as nested lists of floats."""
        model = self.model
        result = {k: [] for k in HOOK_KINDS}
        for i, ex in enumerate(self.examples):
            store = {}
            logits = model.forward(torch.tensor([ex["corruptedIds"]]), hook=capture_hook(store),
                                   input_requires_grad=True)[0]
            ld = logit_diff(logits, ex["correctId"], ex["incorrectId"])
            keys = [(k, l) for k in HOOK_KINDS for l in range(model.n_layer)]
            grads = torch.autograd.grad(ld, [store[key] for key in keys])
            per_kind = {k: [None] * model.n_layer for k in HOOK_KINDS}
            for (kind, layer), g in zip(keys, grads):
                diff = self.clean_acts[i][(kind, layer)] - self.corr_acts[i][(kind, layer)]
                attr = (g[0].detach() * diff).sum(-1) * self.scale
                per_kind[kind][layer] = attr
            for k in HOOK_KINDS:
                result[k].append(torch.stack(per_kind[k]))
        return result

    def patched_lds(self, i, kind, layer, mask, source):
        """LD_i of the corrupted example run as a batch, with hook (kind, layer) replaced
        by `source` where `mask` (batch-first) is true."""
        ex = self.examples[i]
        B = mask.shape[0]
        ids = torch.tensor([ex["corruptedIds"]]).expand(B, -1)
        with torch.no_grad():
            logits = self.model.forward(ids, hook=replace_hook(kind, layer, mask, source))
        return logit_diff(logits, ex["correctId"], ex["incorrectId"])

    def activation_patching(self):
        model = self.model
        H = model.n_head
        result = {k: [] for k in HOOK_KINDS}
        for i, ex in enumerate(self.examples):
            T = len(ex["corruptedIds"])
            for kind in HOOK_KINDS:
                mask = component_masks(kind, T, H)
                per_layer = []
                for layer in range(model.n_layer):
                    source = self.clean_acts[i][(kind, layer)].unsqueeze(0)
                    lds = self.patched_lds(i, kind, layer, mask, source)
                    effect = (lds - self.corr_lds[i]) * self.scale
                    per_layer.append(effect.reshape((T, H) if kind == "z" else (T,)))
                result[kind].append(torch.stack(per_layer))
        return result


def to_lists(result):
    return {k: [t.tolist() for t in v] for k, v in result.items()}


def handle(request):
    if not isinstance(request, dict):
        raise ReferenceError("request must be a JSON object")
    model_dir = request.get("modelDir")
    if not isinstance(model_dir, str):
        raise ReferenceError("request.modelDir must be a string")
    examples = request.get("examples")
    if not isinstance(examples, list):
        raise ReferenceError("request.examples must be a list")
    model = GPT2(model_dir)
    run = Run(model, examples)
    response = {
        "cleanLogitDiffs": run.clean_lds,
        "corruptedLogitDiffs": run.corr_lds,
        "cleanLogitDiff": run.ld_clean,
        "corruptedLogitDiff": run.ld_corr,
        "attributions": to_lists(run.attributions()),
    }
    if request.get("activationPatching"):
        response["activationPatching"] = to_lists(run.activation_patching())
    if request.get("returnLogits"):
        response["cleanLastLogits"] = [t.tolist() for t in run.clean_logits]
        response["corruptedLastLogits"] = [t.tolist() for t in run.corr_logits]
    return response


def main():
    try:
        request = json.loads(sys.stdin.read())
        response = handle(request)
        out = json.dumps(response, allow_nan=False)
    except (ReferenceError, ValueError, KeyError, TypeError, OSError) as e:
        sys.stderr.write(f"gpt2_reference: {type(e).__name__}: {e}\n")
        return 1
    sys.stdout.write(out)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
