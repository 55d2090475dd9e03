"""``pilotfish.train`` / ``cancelTraining`` / ``useAdapter`` / ``adapters``: training as a child.

Training runs as ``python -m pilotfish.training train --json-progress``; its JSON lines become
``$/progress``. When it promotes an adapter, the loaded model switches to it without a restart;
an adapter trained on another base model is refused with a message.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections import deque
from typing import Any

from lsprotocol import types

from .. import adapters
from ..indexing import IndexProgress
from ..runtime import Runtime
from ..server import PilotfishServer

log = logging.getLogger(__name__)

# camelCase command option -> training flag
_OPTIONS = {
    "maxCommits": "--max-commits",
    "maxSteps": "--max-steps",
    "maxEval": "--max-eval",
    "timeBudget": "--time-budget",
    "device": "--device",
    "holdoutCommits": "--holdout-commits",
    "threshold": "--threshold",
    "name": "--name",
}
# camelCase boolean option -> (flag when true, flag when false)
_SWITCHES = {
    "retrieval": ("--retrieval", "--no-retrieval"),
    "promote": ("--promote", "--no-promote"),
}


def _first_arg(args: Any) -> Any:
    if isinstance(args, list | tuple) and args:
        return args[0]
    return None


def training_argv(runtime: Runtime, options: dict[str, Any]) -> list[str]:
    """The child's command line for the workspace and the command's options."""
    assert runtime.repo_root is not None
    argv = [sys.executable, "-m", "pilotfish.training", "train", "--json-progress"]
    argv += ["--repo", str(runtime.repo_root), "--model", runtime.settings.model.name]
    if runtime.settings.data_dir:
        argv += ["--data-dir", runtime.settings.data_dir]
    for key, flag in _OPTIONS.items():
        if options.get(key) is not None:
            argv += [flag, str(options[key])]
    for key, (on, off) in _SWITCHES.items():
        if options.get(key) is not None:
            argv.append(on if options[key] else off)
    return argv


def progress_of(line: str) -> IndexProgress | None:
    """A JSON progress line of the child as an ``IndexProgress`` (``None`` if not one)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    message = f"{event.get('stage', '')}: {event.get('message', '')}".strip(": ")
    metrics = event.get("metrics") or {}
    if event.get("step") is not None:
        message = f"{event.get('stage')} {event.get('step')}/{event.get('total')}"
        if "loss" in metrics:
            message += f" loss {metrics['loss']:.3f}"
    return IndexProgress(message=message, percentage=event.get("percentage"))


def reload_adapter(ls: PilotfishServer, runtime: Runtime) -> str | None:
    """Point the loaded model at the repository's current adapter; the outcome, one line."""
    engine = runtime.loaded
    if engine is None or runtime.data_dir is None:
        return None
    sha = ""
    try:
        from ..models.resolve import resolve_model

        sha = resolve_model(runtime.settings.model.name).sha256
    except Exception:  # an unresolvable name leaves the id check alone
        log.debug("could not resolve the model's hash", exc_info=True)
    outcome = adapters.apply(
        engine.generator, runtime.data_dir, runtime.settings.model.adapter, sha
    )
    ls.push_status()
    return outcome


class TrainingJob:
    """The one training child process of a server, relaying its progress."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether a training run is in progress."""
        return self.process is not None and self.process.poll() is None

    def start(self, ls: PilotfishServer, runtime: Runtime, options: dict[str, Any]) -> None:
        """Launch the child and a thread that relays its output."""
        with self._lock:
            self.process = subprocess.Popen(
                training_argv(runtime, options),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        threading.Thread(
            target=self._relay,
            args=(ls, runtime, self.process),
            daemon=True,
            name="pilotfish-train",
        ).start()

    def cancel(self) -> bool:
        """Ask the child to stop (it checkpoints; ``--resume`` goes on later)."""
        if not self.running or self.process is None:
            return False
        self.process.terminate()
        return True

    def _relay(self, ls: PilotfishServer, runtime: Runtime, process: subprocess.Popen[str]) -> None:
        report = ls.progress_reporter("pilotfish: training")
        errors: deque[str] = deque(maxlen=20)
        stderr = process.stderr

        def drain() -> None:
            if stderr is not None:
                for line in stderr:
                    errors.append(line.rstrip())

        threading.Thread(target=drain, daemon=True).start()
        assert process.stdout is not None
        for line in process.stdout:
            progress = progress_of(line)
            if progress is not None:
                report(progress)
        code = process.wait()
        if code == 0:
            outcome = reload_adapter(ls, runtime) or "adapter saved"
            report(IndexProgress(message=outcome, done=True))
            kind = types.MessageType.Warning if "refused" in outcome else types.MessageType.Info
            ls.call_soon(ls.show_message, f"pilotfish: training done; {outcome}", kind)
            return
        last = next((e for e in reversed(errors) if e.startswith("pilotfish")), None)
        last = last or (errors[-1] if errors else f"exit code {code}")
        report(IndexProgress(message=f"failed: {last}", done=True))
        ls.call_soon(ls.show_message, f"{last}", types.MessageType.Error)


def register(server: PilotfishServer) -> None:
    """Register the training and adapter commands."""
    job = TrainingJob()

    @server.command("pilotfish.train")
    def train(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        runtime = ls.runtime
        if runtime is None or runtime.repo_root is None:
            return {"started": False, "reason": "open a folder (a git repository) first"}
        if job.running:
            return {"started": False, "reason": "a training run is already in progress"}
        options = _first_arg(args)
        job.start(ls, runtime, options if isinstance(options, dict) else {})
        return {"started": True}

    @server.command("pilotfish.cancelTraining")
    def cancel(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        return {"cancelled": job.cancel()}

    @server.command("pilotfish.useAdapter")
    def use_adapter(ls: PilotfishServer, *args: Any) -> dict[str, object]:
        runtime = ls.runtime
        if runtime is None or runtime.data_dir is None:
            return {"ok": False, "reason": "no workspace"}
        arg = _first_arg(args)
        name = arg.get("name") if isinstance(arg, dict) else arg
        try:
            adapters.use(runtime.data_dir, str(name) if name else None)
        except Exception as exc:
            return {"ok": False, "reason": str(exc)}

        def swap() -> None:
            outcome = reload_adapter(ls, runtime)
            if outcome and outcome.startswith("refused"):
                ls.call_soon(ls.show_message, f"pilotfish: {outcome}", types.MessageType.Warning)

        threading.Thread(target=swap, daemon=True, name="pilotfish-adapter").start()
        return {"ok": True, "adapter": name}

    @server.command("pilotfish.adapters")
    def list_adapters(ls: PilotfishServer, *args: Any) -> list[dict[str, object]]:
        runtime = ls.runtime
        if runtime is None or runtime.data_dir is None:
            return []
        return [a.to_json() for a in adapters.list_adapters(runtime.data_dir)]

    del train, cancel, use_adapter, list_adapters
