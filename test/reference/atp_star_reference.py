#!/usr/bin/python3
"""Independent dev-time reference for AtP* (Kramar et al. 2024, arXiv 2403.00745) in float64, by brute force.

Reads {"requests": [request, ...]} on stdin, writes {"responses": [response, ...]} on stdout.

  request  = {"modelDir": "/abs/dir", "examples": [{cleanIds, corruptedIds, correctId, incorrectId}, ...],
              "gradDrop": bool,
              "exactNodes": [{"example": i, "kind": "q" | "k", "layer": l, "pos": p, "head": h}, ...]}   (optional)
  response = {"cleanLogitDiff", "corruptedLogitDiff",
              "atp":      {"resid_pre" | "attn_out" | "mlp_out": [ex][layer][pos], "z": [ex][layer][pos][head]},
              "atpStar":  {"q", "qLinear": [ex][layer][pos][head], "k", "kLinear", "v": [ex][layer][pos][kvHead]},
              "gradDrop": {"resid_pre", "attn_out", "mlp_out", "z", "q", "k", "v"}         (only with gradDrop)
              "exact":    [{"exact": float, "linearInA": float}, ...]                    (one per exactNodes entry),
              "offArgmaxMedian": [layer]  median over query rows of the attention weight off the row's argmax}

All values are in the engine's units: (change in LD_i) / (n * (LD_clean - LD_corr)); GradDrop uses the
absolute value of that scale. Definitions, computed literally rather than in closed form:

  q node (l, p, h)   rebuild row p of head h's scores with the clean query against the corrupted keys,
                     softmax it, and dot (new row - corrupted row) with dLD/dA of that row.
  k node (l, p, g)   for every query head h reading key/value head g, rebuild head h's whole score matrix with
                     column p replaced by q_t^corr . k_p^clean * scale (masked entries stay masked), softmax
                     every row, and dot (new pattern - corrupted pattern) with dLD/dA.
  linear terms       autograd's gradient of LD at q, k, v (after RoPE, before the key/value heads are repeated)
                     dotted with (clean - corrupted), summed over d_head.
  GradDrop           for each layer l, a separate backward pass in which layer l's attn_out and mlp_out enter
                     the residual stream detached (forward unchanged, no gradient through them), giving every
                     node's AtP+GD_l (with the q/k rules above using that pass's dLD/dA); then
                     GradDrop = sum_l |AtP+GD_l| / (L - 1).
  exact              a corrupted forward with that one q or k vector replaced by its clean value;
                     linearInA = sum (A_patched - A_corr) * dLD/dA over the patched layer's pattern.

The forward passes reuse the weights that gpt2_reference.py / families_reference.py load, but are written out
again here with hook points for q, k, v and the attention pattern.
"""

import json
import math
import os
import sys

sys.dont_write_bytecode = True

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpt2_reference as base  # noqa: E402
import families_reference as families  # noqa: E402

ReferenceError = base.ReferenceError
HOOK_KINDS = ("resid_pre", "z", "attn_out", "mlp_out")


class Hooks:
    """Identity hooks; subclasses capture or replace. All q/k/v are head-first: [B, heads, T, dh]."""

    drop_layer = None

    def act(self, kind, layer, x):
        return x

    def qkv(self, layer, q, k, v):
        return q, k, v

    def pattern(self, layer, a):
        return a


def _attend(hooks, l, q, k, v, allowed, scale, group):
    """q [B,H,T,dh], k/v [B,K,T,dh] -> z [B,T,H,dh]."""
    q, k, v = hooks.qkv(l, q, k, v)
    k = torch.repeat_interleave(k, group, dim=1)
    v = torch.repeat_interleave(v, group, dim=1)
    scores = ((q @ k.transpose(-1, -2)) * scale).masked_fill(~allowed, float("-inf"))
    a = hooks.pattern(l, torch.softmax(scores, dim=-1))
    return (a @ v).transpose(1, 2)


def _residual_add(hooks, l, x, out):
    return x + (out.detach() if hooks.drop_layer == l else out)


def forward(model, ids, hooks):
    """ids [1, T] -> (residual [1, T, d], final-norm function, unembedding)."""
    if isinstance(model, base.GPT2):
        return _gpt2(model, ids, hooks)
    if isinstance(model, families.GPTNeo):
        return _gpt_neo(model, ids, hooks)
    if isinstance(model, families.LlamaFamily):
        return _llama(model, ids, hooks)
    raise ReferenceError(f"unsupported model {type(model).__name__}")


def _gpt2(m, ids, hooks):
    B, T = ids.shape
    H, dh, d = m.n_head, m.d_head, m.d
    x = (m.wte[ids] + m.wpe[:T].unsqueeze(0)).detach().requires_grad_(True)
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l, p in enumerate(m.layers):
        x = hooks.act("resid_pre", l, x)
        qkv = m.layer_norm(x, p["ln_1.w"], p["ln_1.b"]) @ p["c_attn.w"] + p["c_attn.b"]
        q, k, v = (t.reshape(B, T, H, dh).transpose(1, 2) for t in qkv.split(d, dim=-1))
        scale = (1 / math.sqrt(dh) if m.scale_attn_weights else 1.0) / (l + 1 if m.scale_by_inverse_layer_idx else 1)
        z = hooks.act("z", l, _attend(hooks, l, q, k, v, allowed, scale, 1))
        attn_out = hooks.act("attn_out", l, z.reshape(B, T, d) @ p["attn.c_proj.w"] + p["attn.c_proj.b"])
        x = _residual_add(hooks, l, x, attn_out)
        h2 = m.layer_norm(x, p["ln_2.w"], p["ln_2.b"])
        mlp_out = hooks.act("mlp_out", l, m.act(h2 @ p["c_fc.w"] + p["c_fc.b"]) @ p["mlp.c_proj.w"] + p["mlp.c_proj.b"])
        x = _residual_add(hooks, l, x, mlp_out)
    last = m.layer_norm(x[:, -1, :], m.ln_f_w, m.ln_f_b)
    return last @ m.w_u.T


def _gpt_neo(m, ids, hooks):
    B, T = ids.shape
    H, dh, d = m.n_head, m.d_head, m.d
    x = (m.wte[ids] + m.wpe[:T].unsqueeze(0)).detach().requires_grad_(True)
    i = torch.arange(T).unsqueeze(1)
    j = torch.arange(T).unsqueeze(0)
    allowed = {"global": j <= i, "local": (j <= i) & (i - j < m.window)}
    for l, p in enumerate(m.layers):
        x = hooks.act("resid_pre", l, x)
        h = families._layer_norm(x, *p["ln_1"], m.eps)
        q, k, v = ((h @ p[n].T).reshape(B, T, H, dh).transpose(1, 2) for n in ("q", "k", "v"))
        z = hooks.act("z", l, _attend(hooks, l, q, k, v, allowed[m.attention_layers[l]], 1.0, 1))
        attn_out = hooks.act("attn_out", l, z.reshape(B, T, d) @ p["o"].T + p["o_b"])
        x = _residual_add(hooks, l, x, attn_out)
        h2 = families._layer_norm(x, *p["ln_2"], m.eps)
        mlp_out = hooks.act("mlp_out", l, m.act(h2 @ p["fc"].T + p["fc_b"]) @ p["proj"].T + p["proj_b"])
        x = _residual_add(hooks, l, x, mlp_out)
    last = families._layer_norm(x[:, -1, :], *m.ln_f, m.eps)
    return last @ m.w_u.T


def _llama(m, ids, hooks):
    B, T = ids.shape
    H, K, dh = m.n_head, m.n_kv, m.d_head
    x = (m.embed[ids] * m.embedding_multiplier).detach().requires_grad_(True)
    angles = torch.outer(torch.arange(T, dtype=torch.float64), m.inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = torch.cos(angles), torch.sin(angles)
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
    lin = families.LlamaFamily._linear
    for l, p in enumerate(m.layers):
        x = hooks.act("resid_pre", l, x)
        h = families._rms_norm(x, p["in_norm"], m.eps)
        q = lin(h, p["q"], p["q_b"]).reshape(B, T, H, dh).transpose(1, 2)
        k = lin(h, p["k"], p["k_b"]).reshape(B, T, K, dh).transpose(1, 2)
        v = lin(h, p["v"], p["v_b"]).reshape(B, T, K, dh).transpose(1, 2)
        q = q * cos + families._rotate_half(q) * sin
        k = k * cos + families._rotate_half(k) * sin
        z = hooks.act("z", l, _attend(hooks, l, q, k, v, allowed, m.scale, H // K))
        attn_out = hooks.act("attn_out", l, lin(z.reshape(B, T, H * dh), p["o"], p["o_b"]) * m.residual_multiplier)
        x = _residual_add(hooks, l, x, attn_out)
        h2 = families._rms_norm(x, p["post_norm"], m.eps)
        if m.moe:
            mlp = m._moe(p, h2)
        else:
            mlp = lin(F.silu(lin(h2, p["gate"], p["gate_b"])) * lin(h2, p["up"], p["up_b"]), p["down"], p["down_b"])
        mlp_out = hooks.act("mlp_out", l, mlp * m.residual_multiplier)
        x = _residual_add(hooks, l, x, mlp_out)
    last = families._rms_norm(x[:, -1, :], m.norm, m.eps)
    return (last @ m.w_u.T) / m.logits_scaling


class Capture(Hooks):
    def __init__(self, drop_layer=None):
        self.drop_layer = drop_layer
        self.acts = {}

    def act(self, kind, layer, x):
        self.acts[(kind, layer)] = x
        return x

    def qkv(self, layer, q, k, v):
        self.acts[("q", layer)], self.acts[("k", layer)], self.acts[("v", layer)] = q, k, v
        return q, k, v

    def pattern(self, layer, a):
        self.acts[("pattern", layer)] = a
        return a


class PatchOne(Capture):
    """Replaces one query or key vector (head-first index [0, head, pos]) by its clean value."""

    def __init__(self, kind, layer, pos, head, clean):
        super().__init__()
        self.node = (kind, layer, pos, head)
        self.clean = clean

    def qkv(self, layer, q, k, v):
        kind, l, pos, head = self.node
        if layer == l:
            target = (q if kind == "q" else k).clone()
            target[0, head, pos] = self.clean[0, head, pos]
            q, k = (target, k) if kind == "q" else (q, target)
        return super().qkv(layer, q, k, v)


def _ld(logits, ex):
    return logits[0, ex["correctId"]] - logits[0, ex["incorrectId"]]


def _mask(T):
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


class Example:
    def __init__(self, model, ex):
        self.model, self.ex = model, ex
        with torch.no_grad():
            self.clean = Capture()
            self.ld_clean = float(_ld(forward(model, torch.tensor([ex["cleanIds"]]), self.clean), ex))
        self.clean_acts = {k: v.detach() for k, v in self.clean.acts.items()}
        self.T = len(ex["corruptedIds"])

    def gradient_pass(self, drop_layer=None):
        """Corrupted forward and one backward of LD; returns (LD, activations, gradients) detached."""
        cap = Capture(drop_layer)
        ld = _ld(forward(self.model, torch.tensor([self.ex["corruptedIds"]]), cap), self.ex)
        keys = list(cap.acts)
        grads = torch.autograd.grad(ld, [cap.acts[k] for k in keys], allow_unused=True)
        acts = {k: cap.acts[k].detach() for k in keys}
        g = {k: (torch.zeros_like(acts[k]) if gr is None else gr.detach()) for k, gr in zip(keys, grads)}
        return float(ld), acts, g

    def estimates(self, drop_layer=None):
        """Un-normalised AtP / AtP* values of every node for one backward pass."""
        m = self.model
        L, T = m.n_layer, self.T
        H = m.n_head
        K = getattr(m, "n_kv", H)
        group = H // K
        ld, acts, g = self.gradient_pass(drop_layer)
        out = {}
        for kind in HOOK_KINDS:
            out[kind] = torch.stack([(g[(kind, l)][0] * (self.clean_acts[(kind, l)][0] - acts[(kind, l)][0])).sum(-1) for l in range(L)])
        for kind, key in (("q", "qLinear"), ("k", "kLinear"), ("v", "v")):
            # [1, heads, T, dh] -> [T, heads]
            out[key] = torch.stack([(g[(kind, l)][0] * (self.clean_acts[(kind, l)][0] - acts[(kind, l)][0])).sum(-1).T for l in range(L)])
        qfix = torch.zeros(L, T, H, dtype=torch.float64)
        kfix = torch.zeros(L, T, K, dtype=torch.float64)
        allowed = self.allowed_masks()
        for l in range(L):
            scale = self.scale(l)
            qc, kc = self.clean_acts[("q", l)][0], self.clean_acts[("k", l)][0]
            qx, kx = acts[("q", l)][0], acts[("k", l)][0]
            A, G = acts[("pattern", l)][0], g[("pattern", l)][0]
            mask = allowed[l]
            for h in range(H):
                kv = h // group
                for p in range(T):
                    row = (qc[h, p] @ kx[kv].T * scale).masked_fill(~mask[p], float("-inf"))
                    qfix[l, p, h] = ((torch.softmax(row, -1) - A[h, p]) * G[h, p]).sum()
            for kv in range(K):
                for p in range(T):
                    total = 0.0
                    for h in range(kv * group, (kv + 1) * group):
                        S = (qx[h] @ kx[kv].T * scale).masked_fill(~mask, float("-inf"))
                        column = (qx[h] @ kc[kv, p]) * scale
                        S[:, p] = torch.where(mask[:, p], column, torch.full_like(column, float("-inf")))
                        total += float(((torch.softmax(S, -1) - A[h]) * G[h]).sum())
                    kfix[l, p, kv] = total
        out["q"], out["k"] = qfix, kfix
        return ld, out

    def allowed_masks(self):
        m, T = self.model, self.T
        if isinstance(m, families.GPTNeo):
            i = torch.arange(T).unsqueeze(1)
            j = torch.arange(T).unsqueeze(0)
            return [((j <= i) & (i - j < m.window)) if m.attention_layers[l] == "local" else (j <= i) for l in range(m.n_layer)]
        return [_mask(T)] * m.n_layer

    def scale(self, l):
        m = self.model
        if isinstance(m, base.GPT2):
            return (1 / math.sqrt(m.d_head) if m.scale_attn_weights else 1.0) / (l + 1 if m.scale_by_inverse_layer_idx else 1)
        if isinstance(m, families.GPTNeo):
            return 1.0
        return m.scale

    def exact(self, kind, layer, pos, head, ld_corr, g_pattern, a_pattern):
        hooks = PatchOne(kind, layer, pos, head, self.clean_acts[(kind, layer)])
        with torch.no_grad():
            ld = float(_ld(forward(self.model, torch.tensor([self.ex["corruptedIds"]]), hooks), self.ex))
        a_patched = hooks.acts[("pattern", layer)][0]
        linear = float(((a_patched - a_pattern) * g_pattern).sum())
        return ld - ld_corr, linear


def to_list(t):
    return t.tolist()


def respond(request):
    model = families.load_model(request["modelDir"])
    examples = [Example(model, ex) for ex in request["examples"]]
    n = len(examples)
    L = model.n_layer
    base_runs = [ex.estimates(None) for ex in examples]
    ld_clean = sum(ex.ld_clean for ex in examples) / n
    ld_corr = sum(ld for ld, _ in base_runs) / n
    scale = 1.0 / (n * (ld_clean - ld_corr))
    response = {
        "cleanLogitDiff": ld_clean,
        "corruptedLogitDiff": ld_corr,
        "atp": {k: [to_list(out[k] * scale) for _, out in base_runs] for k in HOOK_KINDS},
        "atpStar": {k: [to_list(out[k] * scale) for _, out in base_runs] for k in ("q", "qLinear", "k", "kLinear", "v")},
    }
    if request.get("gradDrop"):
        kinds = HOOK_KINDS + ("q", "k", "v")
        sums = [{k: torch.zeros_like(out[k]) for k in kinds} for _, out in base_runs]
        for drop in range(L):
            for i, ex in enumerate(examples):
                _, out = ex.estimates(drop)
                for k in kinds:
                    sums[i][k] += out[k].abs()
        response["gradDrop"] = {k: [to_list(s[k] * abs(scale) / (L - 1)) for s in sums] for k in kinds}
    exact = []
    passes = {}
    for node in request.get("exactNodes", []):
        ex = examples[node["example"]]
        if node["example"] not in passes:
            passes[node["example"]] = ex.gradient_pass(None)
        ld, acts, g = passes[node["example"]]
        layer = node["layer"]
        delta, linear = ex.exact(node["kind"], layer, node["pos"], node["head"], ld, g[("pattern", layer)][0], acts[("pattern", layer)][0])
        exact.append({"exact": delta * scale, "linearInA": linear * scale})
    if exact:
        response["exact"] = exact
    # How saturated each layer's corrupted pattern is (first example): the median over query rows t >= 1 of the
    # weight off the row's argmax, summed directly (1 - max would round to 0 below float64's epsilon).
    _, acts, _ = examples[0].gradient_pass(None)
    saturation = []
    for l in range(L):
        A = acts[("pattern", l)][0][:, 1:, :]
        off = A.sum(-1) - A.max(-1).values
        off = torch.where(off > 1e-12, off, A.masked_fill(A == A.max(-1, keepdim=True).values, 0).sum(-1))
        saturation.append(float(off.flatten().median()))
    response["offArgmaxMedian"] = saturation
    return response


def main():
    torch.set_grad_enabled(True)
    try:
        request = json.loads(sys.stdin.read())
        out = json.dumps({"responses": [respond(r) for r in request["requests"]]}, allow_nan=False)
    except (ReferenceError, ValueError, KeyError, TypeError, OSError) as e:
        sys.stderr.write(f"atp_star_reference: {type(e).__name__}: {e}\n")
        return 1
    sys.stdout.write(out)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
