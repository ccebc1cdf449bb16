#!/usr/bin/python3
"""Dev-time trainer for the project's small TinySQL demo model (GPT-2 layout), with Debian's python3-torch.

  /usr/bin/python3 scripts/demo-model/gpt2_train.py --data DIR --out MODEL_DIR [--steps N] [--seed S] ...

DIR holds train.jsonl and valid.jsonl, one example per line: {"prompt": [ids], "completion": [ids]}
(token ids from the project's own tokenizer; the completion ends with the end-of-text id). The loss is the
next-token cross-entropy on the completion only. The model is saved in Hugging Face GPT-2 layout
(config.json + model.safetensors, Conv1D weights [in, out], tied embeddings), so the engine loads it like any
hub checkpoint. The product never needs Python: this script only makes the shipped weights.
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import time

# Idle OpenMP workers must not spin while others compute (with the default active wait, 2 threads on 2 busy
# cores ran several times slower than 1): set before torch loads its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--eos-id", type=int, required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--positions", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return ap.parse_args()


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        # Conv1D layout as in Hugging Face GPT-2: weight [in, out], y = x @ W + b.
        self.c_attn_w = nn.Parameter(torch.randn(d, 3 * d) * 0.02)
        self.c_attn_b = nn.Parameter(torch.zeros(3 * d))
        self.c_proj_w = nn.Parameter(torch.randn(d, d) * 0.02)
        self.c_proj_b = nn.Parameter(torch.zeros(d))
        self.c_fc_w = nn.Parameter(torch.randn(d, 4 * d) * 0.02)
        self.c_fc_b = nn.Parameter(torch.zeros(4 * d))
        self.mlp_proj_w = nn.Parameter(torch.randn(4 * d, d) * 0.02)
        self.mlp_proj_b = nn.Parameter(torch.zeros(d))

    def forward(self, x, mask):
        B, T, D = x.shape
        H = self.heads
        q, k, v = (self.ln_1(x) @ self.c_attn_w + self.c_attn_b).split(D, dim=-1)
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        scores = scores.masked_fill(~mask[:T, :T], float("-inf"))
        z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + z @ self.c_proj_w + self.c_proj_b
        h = gelu_new(self.ln_2(x) @ self.c_fc_w + self.c_fc_b)
        return x + h @ self.mlp_proj_w + self.mlp_proj_b


class GPT2(nn.Module):
    def __init__(self, vocab, positions, d, layers, heads):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(positions, d) * 0.01)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.register_buffer("mask", torch.tril(torch.ones(positions, positions, dtype=torch.bool)))

    def forward(self, ids):
        T = ids.shape[1]
        x = self.wte[ids] + self.wpe[:T]
        for block in self.blocks:
            x = block(x, self.mask)
        return self.ln_f(x) @ self.wte.T

    def load_hf_state(self, tensors):
        """The inverse of hf_state: fills the parameters from Hugging Face-named tensors."""
        mine = self.hf_state_params()
        missing = sorted(set(mine) - set(tensors))
        if missing:
            raise SystemExit(f"checkpoint lacks {missing[:3]}...")
        with torch.no_grad():
            for name, param in mine.items():
                param.copy_(torch.tensor(np.array(tensors[name]), dtype=param.dtype))

    def hf_state(self):
        return {k: v.detach().float().contiguous() for k, v in self.hf_state_params().items()}

    def hf_state_params(self):
        """Tensors under Hugging Face GPT2LMHeadModel's names (without the transformer. prefix)."""
        out = {"wte.weight": self.wte, "wpe.weight": self.wpe, "ln_f.weight": self.ln_f.weight, "ln_f.bias": self.ln_f.bias}
        for i, b in enumerate(self.blocks):
            p = f"h.{i}."
            out.update({
                p + "ln_1.weight": b.ln_1.weight, p + "ln_1.bias": b.ln_1.bias,
                p + "ln_2.weight": b.ln_2.weight, p + "ln_2.bias": b.ln_2.bias,
                p + "attn.c_attn.weight": b.c_attn_w, p + "attn.c_attn.bias": b.c_attn_b,
                p + "attn.c_proj.weight": b.c_proj_w, p + "attn.c_proj.bias": b.c_proj_b,
                p + "mlp.c_fc.weight": b.c_fc_w, p + "mlp.c_fc.bias": b.c_fc_b,
                p + "mlp.c_proj.weight": b.mlp_proj_w, p + "mlp.c_proj.bias": b.mlp_proj_b,
            })
        return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def batches(examples, batch_size, rng):
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield [examples[j] for j in order[i:i + batch_size]]


def to_tensors(batch):
    seqs = [ex["prompt"] + ex["completion"] for ex in batch]
    T = max(len(s) for s in seqs) - 1
    inputs = torch.zeros(len(seqs), T, dtype=torch.long)
    targets = torch.full((len(seqs), T), -100, dtype=torch.long)
    for b, (ex, s) in enumerate(zip(batch, seqs)):
        inputs[b, :len(s) - 1] = torch.tensor(s[:-1])
        start = len(ex["prompt"]) - 1  # the position that predicts the first completion token
        targets[b, start:len(s) - 1] = torch.tensor(s[start + 1:])
    return inputs, targets


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)
    train = load(os.path.join(args.data, "train.jsonl"))
    valid = load(os.path.join(args.data, "valid.jsonl"))[:256]
    longest = max(len(ex["prompt"]) + len(ex["completion"]) for ex in train + valid)
    if longest > args.positions:
        sys.exit(f"examples have up to {longest} tokens, more than --positions {args.positions}")

    model = GPT2(args.vocab_size, args.positions, args.d_model, args.layers, args.heads)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    schedule = lambda step: min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    valid_inputs, valid_targets = to_tensors(valid)
    started = time.time()
    stream = batches(train, args.batch_size, rng)
    for step in range(args.steps):
        inputs, targets = to_tensors(next(stream))
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            with torch.no_grad():
                v = F.cross_entropy(model(valid_inputs).reshape(-1, args.vocab_size), valid_targets.reshape(-1), ignore_index=-100).item()
            print(f"step {step:5d}  train loss {loss.item():.4f}  valid loss {v:.4f}  {time.time() - started:.0f}s", flush=True)

    os.makedirs(args.out, exist_ok=True)
    config = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
        "vocab_size": args.vocab_size, "n_positions": args.positions, "n_ctx": args.positions,
        "n_embd": args.d_model, "n_layer": args.layers, "n_head": args.heads, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True,
        "scale_attn_weights": True, "bos_token_id": args.eos_id, "eos_token_id": args.eos_id,
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(args.out, "model.safetensors"), model.hf_state(), {"format": "pt"})
    summary = {"steps": args.steps, "seconds": round(time.time() - started), "parameters": sum(p.numel() for p in model.parameters()),
               "args": vars(args), "torch": torch.__version__}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
