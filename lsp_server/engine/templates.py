"""Fill-in-the-middle prompt templates per model family, kept as data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

ContextStyle = Literal["repo", "comments"]
"""How other files' snippets are shown: the model's repository-level format (``repo``: one
``<|file_sep|>`` file each before the current file), or comment lines at the top of the current
file's prefix (``comments``: what several peers send to models without file tokens)."""

# Line-comment leaders by language id; anything else gets "#" (Python, shell, Ruby, TOML...).
_LINE_COMMENT = {
    "javascript": "//", "typescript": "//", "tsx": "//", "go": "//", "rust": "//", "java": "//",
    "c": "//", "cpp": "//", "csharp": "//", "kotlin": "//", "swift": "//", "scala": "//",
    "php": "//", "lua": "--", "sql": "--",
}


@dataclass(frozen=True, kw_only=True)
class RepoFile:
    """A piece of another file shown to the model before the current file."""

    path: str
    text: str


@dataclass(frozen=True, kw_only=True)
class FimTemplate:
    """How one model family spells a fill-in-the-middle prompt."""

    name: str
    prefix: str
    suffix: str
    middle: str
    stop: tuple[str, ...]
    file_sep: str | None = None
    """Token that starts a file in repository-level prompts; ``None`` means use comments."""
    repo_name: str | None = None
    version: str = "2"
    """Bumped when the rendering changes, so adapters record the template they were trained on.
    2: where only indentation is typed on the cursor's line, the prefix ends at the line start
    (``split_trailing_space``)."""

    def render(
        self,
        prefix: str,
        suffix: str,
        *,
        repo_files: Sequence[RepoFile] = (),
        repo: str = "",
        path: str = "",
        style: ContextStyle = "repo",
        language: str = "",
    ) -> str:
        """Render a prompt; ``repo_files`` go in the repository-level format or as comments."""
        fim = f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"
        if not repo_files:
            return fim
        if self.file_sep is None or style == "comments":
            # Other files as a comment block at the top of the prefix (families without file
            # tokens have no other way; for the rest it is a measured alternative).
            leader = _LINE_COMMENT.get(language, "#")
            context = "".join(
                f"{leader} {f.path}\n{_comment(f.text, leader)}\n" for f in repo_files
            )
            return f"{self.prefix}{context}{prefix}{self.suffix}{suffix}{self.middle}"
        head = f"{self.repo_name}{repo}\n" if self.repo_name else ""
        files = "".join(f"{self.file_sep}{f.path}\n{f.text.rstrip()}\n" for f in repo_files)
        return f"{head}{files}{self.file_sep}{path}\n{fim}"

    def special_tokens(self) -> tuple[str, ...]:
        """The tokens that must exist in a tokenizer for this template to apply."""
        return (self.prefix, self.suffix, self.middle)


def _comment(text: str, leader: str = "#") -> str:
    return "\n".join(f"{leader} {line}" if line else leader for line in text.rstrip().splitlines())


TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate(
            name="qwen2.5-coder",
            prefix="<|fim_prefix|>",
            suffix="<|fim_suffix|>",
            middle="<|fim_middle|>",
            stop=(
                "<|endoftext|>",
                "<|fim_pad|>",
                "<|file_sep|>",
                "<|im_end|>",
                "<|fim_prefix|>",
                "<|repo_name|>",
            ),
            file_sep="<|file_sep|>",
            repo_name="<|repo_name|>",
        ),
        FimTemplate(
            name="starcoder2",
            prefix="<fim_prefix>",
            suffix="<fim_suffix>",
            middle="<fim_middle>",
            stop=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<repo_name>"),
            file_sep="<file_sep>",
            repo_name="<repo_name>",
        ),
        FimTemplate(
            name="deepseek-coder",
            prefix="<｜fim▁begin｜>",
            suffix="<｜fim▁hole｜>",
            middle="<｜fim▁end｜>",
            stop=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>"),
        ),
        FimTemplate(
            name="codellama",
            prefix="<PRE> ",
            suffix=" <SUF>",
            middle=" <MID>",
            stop=("<EOT>", "</s>"),
        ),
    )
}


def template_for(has_token: Callable[[str], bool]) -> FimTemplate | None:
    """Pick the template whose FIM tokens the tokenizer knows (first match wins)."""
    for template in TEMPLATES.values():
        if all(has_token(t.strip()) for t in template.special_tokens()):
            return template
    return None
