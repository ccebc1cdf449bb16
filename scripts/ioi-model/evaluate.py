#!/usr/bin/python3
"""IOI accuracy of the IOI demo model (dev-time, Debian's python3-torch).

  /usr/bin/python3 scripts/ioi-model/evaluate.py --model MODEL_DIR --data heldout.jsonl [--limit 500]

heldout.jsonl: {"prompt": [ids], "completion": [indirect object id], "incorrect": [subject id]} from
scripts/ioi-model/make-data.ts. Prints JSON: "logitDiffAccuracy" (the indirect object's logit above the
subject's), "greedyAccuracy" (the indirect object is the most likely next token of the whole vocabulary) and the
mean logit difference.
"""

import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "demo-model"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "reference"))
from gpt2_train import GPT2  # noqa: E402
from gpt2_reference import read_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    model = GPT2(cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"])
    model.load_hf_state(read_checkpoint(args.model))
    model.eval()
    with open(args.data) as f:
        examples = [json.loads(line) for line in f if line.strip()][: args.limit]
    above = greedy = 0
    total_diff = 0.0
    failures = []
    with torch.no_grad():
        for ex in examples:
            logits = model(torch.tensor([ex["prompt"]]))[0, -1]
            io, s = ex["completion"][0], ex["incorrect"][0]
            diff = float(logits[io] - logits[s])
            total_diff += diff
            above += diff > 0
            greedy += int(logits.argmax()) == io
            if diff <= 0 and len(failures) < 5:
                failures.append({"text": ex.get("text"), "logitDiff": round(diff, 3)})
    n = len(examples)
    print(json.dumps({"examples": n, "logitDiffAccuracy": above / n, "greedyAccuracy": greedy / n, "meanLogitDiff": round(total_diff / n, 3), "firstFailures": failures}))


if __name__ == "__main__":
    main()
