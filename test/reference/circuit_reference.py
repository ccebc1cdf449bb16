#!/usr/bin/python3
"""Independent dev-time reference for edge attribution and circuit faithfulness on GPT-2 (PyTorch, float64).

Written from EAP-IG's definitions (hannamw/EAP-IG: attribute.py, evaluate.py), not from the engine's graphs:
one example at a time, no padding, every head's q, k and v input and every MLP's input and the logits' input a
separate tensor (a zero leaf added to the residual stream), so autograd gives each receiver's own gradient.

Request (stdin):
  {"modelDir": "/abs/dir",
   "examples": [{"cleanIds": [...], "corruptedIds": [...], "correctId": int, "incorrectId": int}, ...],
   "methods": [{"method": "eap" | "eap-corrupted" | "eap-ig" | "eap-ig-activations" | "eap-ig-activations-corrupted", "steps": m}, ...],
   "patches": [{"<edge name>": weight, ...}, ...]}
Response (stdout):
  {"scores": [{"<edge name>": score} per method],        raw: summed over examples, LD units, averaged over runs
   "patchedLogitDiffs": [[LD_i] per patch]}

Definitions (node and edge names as EAP-IG's: input, a{l}.h{h}, m{l}, logits; "a0.h1->a1.h2<q>", "input->m0"):
  sender outputs: input = token + position embedding; head h of layer l = z_h @ W_O[h] (no output bias);
    MLP l = its output. A receiver in layer l reads the input and every head and MLP of earlier layers; MLP l also
    reads the heads of layer l; the logits read everything.
  score(s -> r) = sum_runs sum_pos (clean_s - corrupted_s) . dLD/d(input of r) / runs, summed over examples, where
    eap:                one run on the clean prompt (EAP-IG's get_scores_eap);
    eap-corrupted:      one run on the corrupted prompt;
    eap-ig:             runs on the corrupted prompt with the input embedding corrupted + (k/m)(clean - corrupted),
                        k = 0..m-1;
    eap-ig-activations: for each sender group (input; all heads of layer l; MLP l) and k = 1..m, a run on the
                        clean prompt with that group's outputs corrupted + (k/m)(clean - corrupted)
                        (EAP-IG's get_scores_ig_activations);
    eap-ig-activations-corrupted: the same with k = 0..m-1 and runs on the corrupted prompt.
  patch {edge: w}: a run on the clean prompt where receiver r reads its input plus
    sum_s w(s -> r) (corrupted_s - this run's s), corrupted_s from a run on the corrupted prompt.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import GPT2, ReferenceError  # noqa: E402


class Model:
    def __init__(self, model_dir):
        self.m = GPT2(model_dir)

    def senders_before(self, layer, mlp):
        """Sender names a receiver in `layer` reads (attention inputs, or the MLP's when mlp)."""
        names = ["input"]
        for l in range(layer):
            names += [f"a{l}.h{h}" for h in range(self.m.n_head)] + [f"m{l}"]
        if mlp:
            names += [f"a{layer}.h{h}" for h in range(self.m.n_head)]
        return names

    def receivers(self):
        """(receiver node, input, senders) for every receiver."""
        out = []
        for l in range(self.m.n_layer):
            for h in range(self.m.n_head):
                for kind in ("q", "k", "v"):
                    out.append((f"a{l}.h{h}", kind, self.senders_before(l, False)))
            out.append((f"m{l}", None, self.senders_before(l, True)))
        out.append(("logits", None, self.all_senders()))
        return out

    def all_senders(self):
        names = ["input"]
        for l in range(self.m.n_layer):
            names += [f"a{l}.h{h}" for h in range(self.m.n_head)] + [f"m{l}"]
        return names

    def run(self, ids, correct, incorrect, receiver_add, sender_map):
        """LD of one prompt, and its sender outputs. receiver_add(node, input, senders_so_far) -> [T, d] or None;
        sender_map(name, value) -> value (interpolation)."""
        m = self.m
        T = len(ids)
        H, dh, d = m.n_head, m.d_head, m.d
        ids_t = torch.tensor(ids)
        senders = {}
        x = sender_map("input", m.wte[ids_t] + m.wpe[:T])
        senders["input"] = x
        resid = x
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))

        def read(node, kind):
            add = receiver_add(node, kind, senders)
            return resid if add is None else resid + add

        for l, p in enumerate(m.layers):
            W, b = p["c_attn.w"], p["c_attn.b"]
            head_outputs = []
            for h in range(H):
                proj = {}
                for index, kind in enumerate(("q", "k", "v")):
                    normed = m.layer_norm(read(f"a{l}.h{h}", kind), p["ln_1.w"], p["ln_1.b"])
                    cols = slice(index * d + h * dh, index * d + (h + 1) * dh)
                    proj[kind] = normed @ W[:, cols] + b[cols]
                scores = proj["q"] @ proj["k"].T
                if m.scale_attn_weights:
                    scores = scores / math.sqrt(dh)
                if m.scale_by_inverse_layer_idx:
                    scores = scores / float(l + 1)
                pattern = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
                z = pattern @ proj["v"]
                out = sender_map(f"a{l}.h{h}", z @ p["attn.c_proj.w"][h * dh:(h + 1) * dh, :])
                head_outputs.append(out)
            for h in range(H):
                senders[f"a{l}.h{h}"] = head_outputs[h]
            resid = resid + sum(head_outputs) + p["attn.c_proj.b"]
            h2 = m.layer_norm(read(f"m{l}", None), p["ln_2.w"], p["ln_2.b"])
            mlp = sender_map(f"m{l}", m.act(h2 @ p["c_fc.w"] + p["c_fc.b"]) @ p["mlp.c_proj.w"] + p["mlp.c_proj.b"])
            senders[f"m{l}"] = mlp
            resid = resid + mlp
        final = m.layer_norm(read("logits", None)[T - 1], m.ln_f_w, m.ln_f_b)
        ld = final @ (m.w_u[correct] - m.w_u[incorrect])
        return ld, senders


def edge_name(sender, node, kind):
    return f"{sender}->{node}" + (f"<{kind}>" if kind else "")


def groups(model):
    out = [["input"]]
    for l in range(model.m.n_layer):
        out.append([f"a{l}.h{h}" for h in range(model.m.n_head)])
        out.append([f"m{l}"])
    return out


def scores_for(model, examples, method, steps):
    receivers = model.receivers()
    totals = {}
    for ex in examples:
        plain = lambda name, value: value  # noqa: E731
        none = lambda node, kind, senders: None  # noqa: E731
        with torch.no_grad():
            _, clean = model.run(ex["cleanIds"], ex["correctId"], ex["incorrectId"], none, plain)
            _, corrupted = model.run(ex["corruptedIds"], ex["correctId"], ex["incorrectId"], none, plain)
        # EAP-IG's own eap and ig-activations run the clean prompt (get_scores_eap, get_scores_ig_activations with
        # alpha = k/m, k = 1..m toward clean); the -corrupted variants and eap-ig run the corrupted one.
        prompt = "cleanIds" if method in ("eap", "eap-ig-activations") else "corruptedIds"
        if method in ("eap", "eap-corrupted"):
            runs = [(None, 0.0)]
        elif method == "eap-ig":
            runs = [(["input"], k / steps) for k in range(steps)]
        elif method == "eap-ig-activations":
            runs = [(group, k / steps) for group in groups(model) for k in range(1, steps + 1)]
        elif method == "eap-ig-activations-corrupted":
            runs = [(group, k / steps) for group in groups(model) for k in range(steps)]
        else:
            raise ReferenceError(f"unknown method {method!r}")
        grads = {}
        T = len(ex["cleanIds"])
        for group, alpha in runs:
            leaves = {}

            def receiver_add(node, kind, senders):
                leaf = torch.zeros(T, model.m.d, dtype=torch.float64, requires_grad=True)
                leaves[(node, kind)] = leaf
                return leaf

            def sender_map(name, value):
                if group is not None and name in group:
                    return corrupted[name] + alpha * (clean[name] - corrupted[name])
                return value

            ld, _ = model.run(ex[prompt], ex["correctId"], ex["incorrectId"], receiver_add, sender_map)
            ld.backward()
            for key, leaf in leaves.items():
                # A receiver whose output was replaced by a constant in this run gets no gradient: 0.
                grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
                grads[key] = grads.get(key, 0) + grad / len(runs)
        for node, kind, senders in receivers:
            g = grads[(node, kind)]
            for s in senders:
                name = edge_name(s, node, kind)
                totals[name] = totals.get(name, 0.0) + float(((clean[s] - corrupted[s]) * g).sum())
    return totals


def patched(model, examples, patch):
    out = []
    for ex in examples:
        plain = lambda name, value: value  # noqa: E731
        none = lambda node, kind, senders: None  # noqa: E731
        with torch.no_grad():
            _, corrupted = model.run(ex["corruptedIds"], ex["correctId"], ex["incorrectId"], none, plain)

            def receiver_add(node, kind, senders):
                total = None
                for s, value in senders.items():
                    w = patch.get(edge_name(s, node, kind), 0.0)
                    if w != 0.0:
                        term = w * (corrupted[s] - value)
                        total = term if total is None else total + term
                return total

            ld, _ = model.run(ex["cleanIds"], ex["correctId"], ex["incorrectId"], receiver_add, plain)
        out.append(float(ld))
    return out


def main():
    try:
        request = json.loads(sys.stdin.read())
        model = Model(request["modelDir"])
        examples = request["examples"]
        response = {
            "scores": [scores_for(model, examples, m["method"], int(m.get("steps", 1))) for m in request.get("methods", [])],
            "patchedLogitDiffs": [patched(model, examples, p) for p in request.get("patches", [])],
        }
        out = json.dumps(response, allow_nan=False)
    except (ReferenceError, ValueError, KeyError, TypeError, OSError) as e:
        sys.stderr.write(f"circuit_reference: {type(e).__name__}: {e}\n")
        return 1
    sys.stdout.write(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
