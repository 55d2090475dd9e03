"""Where a FIM prompt should end when the cursor sits after the indentation of an empty line.

    python benchmarks/line_start_indent.py [--lines 80] [--seed 7] [--model NAME]

An editor asks for a completion right after Enter, on a line holding only the indentation it
inserted. Two prompts for that moment, on real lines of stdlib modules (each line blanked, 80
lines before it as prefix, 30 after it as suffix, the served model, greedy, one line):

* ``in-prompt``: the prefix ends with the typed indentation (what pilotfish did before
  2026-12-02); the model's output is inserted after it as is;
* ``line-start``: the prefix ends at the line start; the model writes the indentation too, and
  the part of it already typed is dropped (``restore_trailing_space``, what pilotfish does now).

Scores per condition: exact match of the code (spaces around ignored), edit similarity and
identifier F1 (``training/evaluate.py``), plus what accepting the suggestion leaves in the file:
``indent_ok`` (the line's indentation is the original one) and ``exact_line`` (the whole line is).
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import threading
from dataclasses import replace
from pathlib import Path

from pilotfish.lsp_server.engine.backends import load_generator
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.prompt import restore_trailing_space
from pilotfish.lsp_server.settings import Settings
from pilotfish.training.evaluate import score

MODULES = (
    "textwrap", "argparse", "csv", "json.decoder", "logging.handlers", "shutil", "tarfile",
    "dataclasses", "inspect", "pathlib",
)


def cases(lines: int, seed: int) -> list[tuple[str, list[str], int]]:
    """(module, its lines, index of an indented code line) sampled evenly over MODULES."""
    rng = random.Random(seed)
    out = []
    for name in MODULES:
        file = importlib.import_module(name).__file__
        assert file is not None
        src = Path(file).read_text(encoding="utf-8").split("\n")
        picks = [
            i for i, line in enumerate(src)
            if len(line.strip()) >= 4 and line.startswith("    ")
            and not line.strip().startswith(("#", '"', "'"))
        ]
        rng.shuffle(picks)
        out += [(name, src, i) for i in picks[: lines // len(MODULES)]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="", help="a model name (default: the served one)")
    args = parser.parse_args()
    settings = Settings().model
    generator = load_generator(replace(settings, name=args.model) if args.model else settings)
    totals: dict[str, list[dict[str, float]]] = {"in-prompt": [], "line-start": []}
    for name, src, i in cases(args.lines, args.seed):
        line = src[i]
        indent = line[: len(line) - len(line.lstrip())]
        prefix = "\n".join(src[max(0, i - 80) : i]) + "\n"
        suffix = "\n" + "\n".join(src[i + 1 : i + 30])
        row: dict[str, object] = {"module": name, "line": i + 1, "target": line}
        for condition, typed_in_prompt in (("in-prompt", indent), ("line-start", "")):
            prompt = f"<|fim_prefix|>{prefix}{typed_in_prompt}<|fim_suffix|>{suffix}<|fim_middle|>"
            request = GenerationRequest(
                prompt=prompt, max_tokens=40, max_lines=1, stop=("<|endoftext|>", "<|file_sep|>")
            )
            out = generator.generate(request, threading.Event()).text
            first = out.lstrip("\n").split("\n")[0] if not out.split("\n")[0].strip() else (
                out.split("\n")[0]
            )
            if not typed_in_prompt:
                first = restore_trailing_space(first, indent)
            accepted = indent + first
            scores = score(accepted, line)
            scores["indent_ok"] = float(
                accepted[: len(accepted) - len(accepted.lstrip())] == indent
            )
            scores["exact_line"] = float(accepted.rstrip() == line.rstrip())
            totals[condition].append(scores)
            row[condition] = accepted
        print(json.dumps(row), flush=True)
    print(
        "| prompt ends | n | exact match | edit similarity | identifier F1 | indent ok "
        "| exact line |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for condition, rows in totals.items():
        mean = {k: 100 * sum(r[k] for r in rows) / max(1, len(rows)) for k in rows[0]}
        print(
            f"| {condition} | {len(rows)} | {mean['exact_match']:.1f} | "
            f"{mean['edit_similarity']:.1f} | {mean['identifier_f1']:.1f} | "
            f"{mean['indent_ok']:.1f} | {mean['exact_line']:.1f} |"
        )
    print(f"{generator.model_id} on {generator.backend}")


if __name__ == "__main__":
    main()
