"""Choose and load the generator for the configured model, backend and device."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from ..errors import UserError
from ..models.registry import BUNDLES
from ..models.resolve import resolve_model
from ..settings import ModelSettings
from .device import pick_device
from .generate import Generator
from .llamacpp_backend import LlamaCppGenerator, llamacpp_available

log = logging.getLogger(__name__)


def choose_backend(settings: ModelSettings, *, has_gguf: bool, has_folder: bool) -> str:
    """Resolve ``auto``: a remote server if a URL is set, llama.cpp on CPU, else transformers."""
    if settings.backend != "auto":
        return settings.backend
    if settings.url:
        return "openai"
    on_cpu = pick_device(settings.device) == "cpu"
    if has_gguf and (on_cpu or not has_folder) and llamacpp_available():
        return "llamacpp"
    return "transformers"


def load_generator(settings: ModelSettings) -> Generator:
    """Load the model named in ``settings`` on the chosen backend."""
    if settings.backend == "openai" or (settings.backend == "auto" and settings.url):
        return load_remote(settings)
    model = resolve_model(settings.name)
    backend = choose_backend(
        settings, has_gguf=model.gguf is not None, has_folder=model.folder is not None
    )
    log.info("loading %s on %s (%s)", model.name, backend, settings.device)
    if backend == "llamacpp":
        if model.gguf is None:
            raise UserError(f"backend llamacpp needs a .gguf file; {model.name} has none")
        if not llamacpp_available():
            raise UserError(
                "backend llamacpp needs llama-cpp-python: pip install 'pilotfish[llamacpp]'"
            )
        return LlamaCppGenerator(
            model.gguf,
            model_id=model.name,
            threads=settings.threads,
            prompt_lookup=settings.prompt_lookup,
        )
    if model.folder is None:
        raise UserError(
            f"{model.name} is a .gguf file: serve it with backend llamacpp, or pull a folder"
        )
    from .hf_backend import TransformersGenerator

    try:
        return TransformersGenerator(
            model.folder, model_id=model.name, device=settings.device, threads=settings.threads
        )
    except RuntimeError as exc:
        raise UserError(str(exc)) from exc


def load_remote(settings: ModelSettings) -> Generator:
    """A client of the OpenAI-compatible server at ``settings.url``.

    Prompts are budgeted with the model's own tokenizer when the model is pulled here, and
    with an estimate otherwise; the FIM template follows the configured model's family.
    """
    from .remote_backend import OpenAIGenerator, family_for

    if not settings.url:
        raise UserError("backend openai needs the server's URL in model.url")
    bundle = BUNDLES.get(settings.name)
    try:
        return OpenAIGenerator(
            settings.url,
            model_id=settings.name,
            remote_model=settings.remote_model,
            api_key=os.environ.get(settings.api_key_env, "") if settings.api_key_env else "",
            template=family_for(
                f"{settings.name} {settings.remote_model}", bundle and bundle.family
            ),
            count_tokens=local_token_counter(settings.name),
        )
    except ValueError as exc:
        raise UserError(f"model.url: {exc}") from exc


def local_token_counter(name: str) -> Callable[[str], int] | None:
    """Count tokens with the pulled model's ``tokenizer.json``, or ``None`` if not pulled."""
    try:
        model = resolve_model(name)
    except UserError:
        return None
    path = model.folder / "tokenizer.json" if model.folder else None
    if path is None or not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count
