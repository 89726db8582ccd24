"""How much greedy answers move with the batch size alone: the same prompts through ``generate_chat`` at two batch
sizes (and optionally two paths), counting equal answers. The yardstick question of issue 21: if today's padded
path disagrees with itself across batch sizes, "equal to today's" cannot be asked of a path that batches
differently.

    python -m benchmarks.batch_equality --dtype float32 --items 64 --batch-a 16 --batch-b 64
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_equality", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--items", type=int, default=64, help="prompts, spread evenly over eval_speed's 329")
    parser.add_argument("--batch-a", type=int, default=16)
    parser.add_argument("--batch-b", type=int, default=64)
    parser.add_argument("--path-b", default="transformers", help="generation path of the second run")
    args = parser.parse_args(argv)
    import torch

    from benchmarks.eval_speed import generative_prompts
    from labkit.infer.generate import Sampling, generate_chat
    from labkit.models import load_causal_lm, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(args.model, device=device, dtype=args.dtype)
    tokenizer = load_tokenizer(args.model)
    every = generative_prompts(329)
    prompts = every[::max(1, len(every) // args.items)][:args.items]
    sampling = Sampling(max_new_tokens=48)
    runs = []
    for batch, path in ((args.batch_a, "transformers"), (args.batch_b, args.path_b)):
        start = time.perf_counter()
        runs.append(generate_chat(model, tokenizer, prompts, sampling, batch_size=batch, path=path))
        print(f"{path}, batch {batch}: {time.perf_counter() - start:.0f} s", flush=True)
    differ = [i for i, (a, b) in enumerate(zip(*runs)) if a != b]
    print(f"{args.model} {args.dtype} on {device}: equal {len(prompts) - len(differ)}/{len(prompts)}"
          + (f" (differ: items {differ})" if differ else ""), flush=True)


if __name__ == "__main__":
    main()
