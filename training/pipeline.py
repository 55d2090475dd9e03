"""The ``train`` and ``eval`` runs: mine -> train -> evaluate -> export -> promote, resumable."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from ..lsp_server import adapters
from ..lsp_server.engine.generate import Generator
from ..lsp_server.engine.prompt import PromptBudget
from ..lsp_server.engine.templates import FimTemplate, template_for
from ..lsp_server.models.registry import served_retrieval
from ..lsp_server.models.resolve import ResolvedModel, resolve_model
from ..lsp_server.paths import repo_data_dir
from ..lsp_server.settings import CompletionSettings
from .config import TrainConfig, to_json
from .dataset import load_cases, load_examples, save_jsonl, tokenise
from .evaluate import EvalReport, evaluate, write_report
from .examples import EvalCase, Example, MiningStats, PromptMaker, Split, mine, time_split
from .export import build_manifest, export_adapter, model_sha256, write_gguf_lora
from .history import Commit, RepoError, first_parent_commits, open_repo, remote_url
from .progress import Event, Reporter
from .retrieval import Retrievers, checkout_snapshot, code_index_retrievers
from .train import train

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Base:
    """The base model: its files, tokenizer and the FIM template it speaks."""

    model: ResolvedModel
    folder: Path
    tokenizer: Any
    template: FimTemplate
    architecture: str


def load_base(name: str) -> Base:
    """Resolve the base model (a transformers folder is needed to train)."""
    from transformers import AutoConfig, AutoTokenizer

    model = resolve_model(name)
    if model.folder is None:
        raise RepoError(f"model {name} has no transformers folder to train; pull it first")
    tokenizer = AutoTokenizer.from_pretrained(str(model.folder))
    vocab = tokenizer.get_vocab()
    template = template_for(lambda t: t in vocab)
    if template is None:
        raise RepoError(f"model {name} has no fill-in-the-middle tokens pilotfish knows")
    arch = str(getattr(AutoConfig.from_pretrained(str(model.folder)), "model_type", ""))
    return Base(
        model=model,
        folder=model.folder,
        tokenizer=tokenizer,
        template=template,
        architecture=arch,
    )


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """Token counts as the server's generator computes them, without transformers' overhead.

    Mining counts tokens thousands of times (prompt budgets are binary searches).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    return lambda text: len(backend.encode(text, add_special_tokens=False).ids)


def completion_settings(config: TrainConfig) -> CompletionSettings:
    """The served settings the evaluation runs with (single first line, greedy)."""
    return CompletionSettings(
        max_tokens=config.eval_max_tokens,
        max_lines=1,
        context_tokens=config.context_tokens,
        retrieval_tokens=config.retrieval_tokens,
        temperature=0.0,
        skip_inside_word=False,
    )


@dataclass
class Workspace:
    """The run folder's mined data, checkout of the split commit and its retriever."""

    run_dir: Path
    split_sha: str
    heldout: list[str]
    examples: list[Example]
    cases: list[EvalCase]
    snapshot: Path
    retrievers: Retrievers | None
    stats: dict[str, Any]
    commits: dict[str, Any]


def prepare(
    repo: git.Repo, root: Path, config: TrainConfig, base: Base, run_dir: Path, report: Reporter
) -> Workspace:
    """Mine the history into ``run_dir`` (or reuse what an interrupted run mined)."""
    meta_file = run_dir / "data.json"
    snapshot_parent = run_dir / "snapshot"
    if config.resume and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        snapshot = Path(meta["snapshot"])
        if not snapshot.is_dir():
            checkout_snapshot(repo, meta["split"], snapshot)
        retrievers = _retrievers(config, snapshot, run_dir)
        report(Event(stage="mine", message="reusing the mined data of the interrupted run"))
        return Workspace(
            run_dir=run_dir,
            split_sha=meta["split"],
            heldout=meta["heldout"],
            examples=load_examples(run_dir / "examples.jsonl"),
            cases=load_cases(run_dir / "eval.jsonl"),
            snapshot=snapshot,
            retrievers=retrievers,
            stats=meta["stats"],
            commits=meta["commits"],
        )
    commits = first_parent_commits(repo, rev=config.rev, max_commits=config.max_commits)
    try:
        split = time_split(commits, config.holdout_commits)
    except ValueError as exc:
        raise RepoError(f"{root}: {exc}") from None
    report(
        Event(
            stage="mine",
            message=(
                f"{len(split.train)} commits to learn from, {len(split.heldout)} held out "
                f"(split at {split.split_sha[:10]})"
            ),
        )
    )
    # The checkout is named like the repository: prompts carry the repository's name.
    snapshot = checkout_snapshot(repo, split.split_sha, snapshot_parent / root.name)
    retrievers = _retrievers(config, snapshot, run_dir)
    # Training prompts hold what an adapter is served: definitions, as the registry says.
    retrieve = retrievers(served_retrieval(config.model, adapter=True)) if retrievers else None
    maker = PromptMaker(
        root=snapshot,
        template=base.template,
        count_tokens=token_counter(base.tokenizer),
        budget=PromptBudget(
            infile_tokens=config.context_tokens,
            retrieval_tokens=config.retrieval_tokens if retrieve else 0,
        ),
        retrieve=retrieve,
    )
    stats = MiningStats()
    started = time.monotonic()
    examples, cases = mine(repo, split, config, maker, stats=stats)
    report(
        Event(
            stage="mine",
            message=(
                f"{len(examples)} examples, {len(cases)} held-out lines in "
                f"{time.monotonic() - started:.0f}s; skipped {dict(stats.skipped)}"
            ),
        )
    )
    if not examples:
        raise RepoError(
            f"{root}: no supported files to learn from in {len(split.train)} commits "
            f"(skipped: {dict(stats.skipped) or 'nothing'})"
        )
    commit_info = _commit_info(split)
    save_jsonl(run_dir / "examples.jsonl", examples)
    save_jsonl(run_dir / "eval.jsonl", cases)
    meta = {
        "split": split.split_sha,
        "heldout": [c.sha for c in split.heldout],
        "snapshot": str(snapshot),
        "stats": stats.to_json(),
        "commits": commit_info,
    }
    meta_file.write_text(json.dumps(meta, indent=2))
    return Workspace(
        run_dir=run_dir,
        split_sha=split.split_sha,
        heldout=meta["heldout"],
        examples=examples,
        cases=cases,
        snapshot=snapshot,
        retrievers=retrievers,
        stats=meta["stats"],
        commits=commit_info,
    )


def _commit_info(split: Split) -> dict[str, Any]:
    def brief(c: Commit) -> dict[str, object]:
        return {"sha": c.sha, "time": c.time}

    return {
        "first": brief(split.train[0]),
        "split": brief(split.train[-1]),
        "heldout_first": brief(split.heldout[0]),
        "heldout_last": brief(split.heldout[-1]),
        "train": len(split.train),
        "heldout": len(split.heldout),
    }


def _retrievers(config: TrainConfig, snapshot: Path, run_dir: Path) -> Retrievers | None:
    if not config.retrieval or config.retrieval_tokens <= 0:
        return None
    return code_index_retrievers(snapshot, run_dir / "index")


def split_validation(examples: list[Example], n: int) -> tuple[list[Example], list[Example]]:
    """Validation = the ``n`` span examples of the newest training commits; the rest trains."""
    spans = sorted(
        (i for i, e in enumerate(examples) if e.kind == "span"), key=lambda i: -examples[i].time
    )
    n = min(n, len(spans) // 5)  # never more than a fifth of what was written
    val_ids = set(spans[:n])
    return (
        [e for i, e in enumerate(examples) if i not in val_ids],
        [examples[i] for i in sorted(val_ids)],
    )


def run_train(config: TrainConfig, report: Reporter) -> int:
    """``train``: the whole pipeline; exit code 0 when an adapter was exported."""
    root = Path(config.repo).expanduser().resolve()
    repo = open_repo(root)
    base = load_base(config.model)
    data_dir = repo_data_dir(root, config.data_dir)
    name = config.name or time.strftime("%Y%m%d-%H%M%S-") + repo.head.commit.hexsha[:8]
    run_dir = Path(config.out).expanduser() if config.out else data_dir / "runs" / name
    if config.resume and not config.out and not config.name:
        run_dir = _latest_run(data_dir) or run_dir
        name = run_dir.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(to_json(config), indent=2))
    ws = prepare(repo, root, config, base, run_dir, report)

    train_examples, val_examples = split_validation(ws.examples, config.val_examples)
    end = base.template.stop[0]
    items = [tokenise(e, base.tokenizer, end) for e in train_examples]
    too_long = sum(1 for t in items if len(t.ids) > config.max_seq_tokens)
    items = [t for t in items if len(t.ids) <= config.max_seq_tokens]
    val_items = [tokenise(e, base.tokenizer, end) for e in val_examples]
    val_items = [t for t in val_items if len(t.ids) <= config.max_seq_tokens]
    report(
        Event(
            stage="train",
            message=(
                f"{len(items)} training examples ({too_long} too long), "
                f"{len(val_items)} for validation"
            ),
        )
    )
    pad = base.tokenizer.pad_token_id
    pad = pad if pad is not None else base.tokenizer.eos_token_id
    result = train(config, base.folder, items, val_items, run_dir, pad_id=int(pad), report=report)
    if result.stopped == "interrupted":
        return 130
    assert result.best_dir is not None

    evaluation = _evaluate(config, base, ws, result.best_dir, report)
    train_summary = result.to_json()
    files = write_report(run_dir, evaluation, ws.cases, train_summary)
    manifest = build_manifest(
        name=name,
        base_model={
            "id": base.model.name,
            "sha256": model_sha256(base.folder, base.model.sha256),
            "architecture": base.architecture,
        },
        repository={"root": str(root), "remote": remote_url(repo)},
        commits=ws.commits,
        dataset={
            **ws.stats,
            "train_examples": len(items),
            "validation_examples": len(val_items),
            "retrieval": ws.retrievers is not None,
        },
        training=train_summary,
        metrics=evaluation.to_json(),
        template={"name": base.template.name, "version": base.template.version},
        lora={
            "r": config.lora_r,
            "alpha": config.lora_alpha,
            "dropout": config.lora_dropout,
            "target_modules": list(config.target_modules),
            "top_layers": config.top_layers,
        },
    )
    report(Event(stage="export", message=f"writing adapter {name}"))
    dest = export_adapter(
        result.best_dir,
        data_dir,
        name,
        manifest,
        gguf_architecture=base.architecture if config.gguf else None,
        extra_files=tuple(files),
    )
    promoted = bool(evaluation.gate.get("passed")) and config.promote
    if promoted:
        adapters.use(data_dir, name)
    report(
        Event(
            stage="done",
            message=(
                f"adapter {name} at {dest}: "
                + ("promoted to current" if promoted else "kept, not promoted")
                + f" ({evaluation.gate.get('reason', '')})"
            ),
        )
    )
    shutil.rmtree(run_dir / "snapshot", ignore_errors=True)
    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
    return 0


def _latest_run(data_dir: Path) -> Path | None:
    runs = [p for p in (data_dir / "runs").glob("*") if (p / "checkpoint").is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _served_generator(config: TrainConfig, base: Base, adapter: Path | None) -> Generator:
    """The backend the server would use for this model here, so the gate measures what is served.

    On a CPU that is llama.cpp on the model's GGUF (the adapter as ``adapter.gguf``, written
    beside the PEFT files when missing); on CUDA, or without llama.cpp, transformers.
    """
    from ..lsp_server.engine.backends import choose_backend
    from ..lsp_server.engine.llamacpp_backend import ADAPTER_GGUF, LlamaCppGenerator
    from ..lsp_server.settings import ModelSettings

    settings = ModelSettings(name=base.model.name, device=config.device)  # type: ignore[arg-type]
    backend = choose_backend(settings, has_gguf=base.model.gguf is not None, has_folder=True)
    if backend == "llamacpp" and base.model.gguf is not None and base.architecture:
        if adapter is not None and not (adapter / ADAPTER_GGUF).is_file():
            write_gguf_lora(adapter, adapter / ADAPTER_GGUF, base.architecture)
        return LlamaCppGenerator(base.model.gguf, model_id=base.model.name,
                                 threads=config.threads)
    from ..lsp_server.engine.hf_backend import TransformersGenerator

    return TransformersGenerator(
        base.folder, model_id=base.model.name, device=config.device, threads=config.threads
    )


def _evaluate(
    config: TrainConfig, base: Base, ws: Workspace, adapter: Path | None, report: Reporter
) -> EvalReport:
    report(Event(stage="eval", message=f"{len(ws.cases)} held-out lines, 4 conditions"))
    generator = _served_generator(config, base, adapter)
    return evaluate(
        ws.cases,
        generator,
        adapter,
        root=ws.snapshot,
        retrievers=ws.retrievers,
        settings=completion_settings(config),
        threshold=config.threshold,
        seed=config.seed,
        report=report,
    )


def run_eval(config: TrainConfig, adapter_name: str, report: Reporter) -> int:
    """``eval``: score an adapter on the commits made after its training split."""
    root = Path(config.repo).expanduser().resolve()
    repo = open_repo(root)
    data_dir = repo_data_dir(root, config.data_dir)
    info = adapters.get(data_dir, adapter_name) if adapter_name else adapters.current(data_dir)
    if info is None:
        raise RepoError("no current adapter; pass --adapter NAME or run train first")
    base = load_base(config.model)
    problem = adapters.incompatibility(
        info, base.model.name, model_sha256(base.folder, base.model.sha256)
    )
    if problem:
        raise RepoError(problem)
    split_sha = str(info.manifest.get("commits", {}).get("split", {}).get("sha", ""))
    commits = first_parent_commits(repo, rev=config.rev)
    shas = [c.sha for c in commits]
    if split_sha not in shas:
        raise RepoError(f"the adapter's split commit {split_sha[:10]} is not in this history")
    at = shas.index(split_sha)
    split = Split(train=tuple(commits[: at + 1]), heldout=tuple(commits[at + 1 :]))
    if not split.heldout:
        raise RepoError("no commits after the adapter's training split to evaluate on")
    run_dir = (
        Path(config.out) if config.out else data_dir / "evals" / time.strftime("%Y%m%d-%H%M%S")
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    snapshot = checkout_snapshot(repo, split_sha, run_dir / "snapshot" / root.name)
    retrievers = _retrievers(config, snapshot, run_dir)
    cfg = dataclasses.replace(config, random_spans_per_file=0)
    maker = PromptMaker(
        root=snapshot,
        template=base.template,
        count_tokens=lambda t: 0,
        budget=PromptBudget(),
        retrieve=None,
    )
    # Only the held-out lines are needed: mine with an empty training side.
    _, cases = mine(repo, Split(train=split.train[-1:], heldout=split.heldout), cfg, maker)
    ws = Workspace(
        run_dir=run_dir,
        split_sha=split_sha,
        heldout=[c.sha for c in split.heldout],
        examples=[],
        cases=cases,
        snapshot=snapshot,
        retrievers=retrievers,
        stats={},
        commits={},
    )
    evaluation = _evaluate(config, base, ws, info.path, report)
    write_report(run_dir, evaluation, cases, title=f"pilotfish eval of {info.name}")
    report(Event(stage="done", message=f"report in {run_dir}: {evaluation.gate.get('reason', '')}"))
    shutil.rmtree(run_dir / "snapshot", ignore_errors=True)
    return 0
