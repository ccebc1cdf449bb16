#!/usr/bin/python3
"""Exact-match accuracy of the TinySQL demo model with greedy decoding (dev-time, Debian's python3-torch).

  /usr/bin/python3 scripts/demo-model/evaluate.py --model MODEL_DIR --data heldout.jsonl [--limit 500]

heldout.jsonl: {"prompt": [ids], "completion": [ids ending with the end-of-text id]} from the project's own
generator and tokenizer. A prediction counts only when the greedy continuation reproduces the whole completion,
end-of-text included. Prints JSON {"examples", "exactMatch", "accuracy"}.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "reference"))
from gpt2_train import GPT2  # noqa: E402
from gpt2_reference import read_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    model = GPT2(cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"])
    model.load_hf_state(read_checkpoint(args.model))
    model.eval()
    with open(args.data) as f:
        examples = [json.loads(line) for line in f if line.strip()][: args.limit]
    correct = 0
    failures = []
    with torch.no_grad():
        for ex in examples:
            ids = list(ex["prompt"])
            target = ex["completion"]
            for _ in range(len(target)):
                next_id = int(model(torch.tensor([ids]))[0, -1].argmax())
                ids.append(next_id)
                if next_id == cfg["eos_token_id"]:
                    break
            produced = ids[len(ex["prompt"]):]
            if produced == target:
                correct += 1
            elif len(failures) < 5:
                failures.append({"expected": target, "produced": produced})
    print(json.dumps({"examples": len(examples), "exactMatch": correct, "accuracy": correct / len(examples), "firstFailures": failures}))


if __name__ == "__main__":
    main()
