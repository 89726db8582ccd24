"""``search_documents``: BM25 (the ``bm25s`` package) over the text and markdown files of ONE folder.

The folder is picked by the user (``--docs DIR`` or the chat app's Tools panel), never by the model. The
model may narrow the search to a sub-path, which is refused when absolute, when it contains ``..``, or when
it resolves outside the folder; files reached through a symlink that points outside are skipped. Files are
cut into passages (paragraphs merged up to ~600 characters under their nearest markdown heading), so a hit
returns a title and a short snippet rather than a whole file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from labkit.infer.tools.registry import Tool, ToolError

SUFFIXES = {".md", ".markdown", ".txt", ".rst"}
MAX_FILES = 2000
MAX_FILE_BYTES = 1_000_000
PASSAGE_CHARS = 600
SNIPPET_CHARS = 300
BM25_HINT = "search_documents needs the 'bm25s' package: pip install bm25s"


@dataclass(frozen=True)
class Passage:
    file: str   # relative to the documents folder, with forward slashes
    title: str  # the nearest markdown heading above the passage, else the file name
    text: str


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_scope(root: Path, sub_path: str | None) -> Path:
    """The folder or file to search: ``root`` itself, or a relative sub-path that stays inside it."""
    if not sub_path or sub_path.strip() in ("", "."):
        return root
    text = sub_path.strip().replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or Path(text).is_absolute():
        raise ToolError(f"path {sub_path!r} is absolute; give a path relative to the documents folder")
    if ".." in PurePosixPath(text).parts:
        raise ToolError(f"path {sub_path!r} contains '..'; only the documents folder can be searched")
    scope = (root / text).resolve()
    if not _inside(scope, root):
        raise ToolError(f"path {sub_path!r} leads outside the documents folder (a symlink?)")
    if not scope.exists():
        raise ToolError(f"path {sub_path!r} does not exist in the documents folder")
    return scope


def document_files(root: Path, scope: Path) -> list[Path]:
    """Text files under ``scope`` whose real location is inside ``root`` (symlinked folders not followed)."""
    candidates = [scope] if scope.is_file() else (
        Path(folder) / name for folder, _, names in os.walk(scope) for name in sorted(names))
    files = []
    for path in candidates:
        if path.suffix.lower() in SUFFIXES and _inside(path.resolve(), root) and path.resolve().is_file():
            files.append(path)
            if len(files) == MAX_FILES:
                break
    return sorted(files)


def split_passages(text: str, file: str) -> list[Passage]:
    """Paragraphs merged up to PASSAGE_CHARS, each titled by the heading above it."""
    title, passages, current = Path(file).name, [], ""
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block:
            continue
        heading = re.match(r"^#{1,6}\s+(.+)$", block.splitlines()[0])
        if heading or len(current) + len(block) > PASSAGE_CHARS:
            if current:
                passages.append(Passage(file, title, current))
            current = ""
        if heading:
            title = heading.group(1).strip()
        current = f"{current}\n\n{block}".strip()
    if current:
        passages.append(Passage(file, title, current))
    return passages


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


@lru_cache(maxsize=8)
def _index(root: str, signature: tuple):
    """A BM25 index of the passages of the files in ``signature`` (path, mtime, size): rebuilt on change."""
    try:
        import bm25s
    except ImportError:
        raise ToolError(BM25_HINT) from None
    passages = []
    for name, _, size in signature:
        if size <= MAX_FILE_BYTES:
            text = (Path(root) / name).read_text(encoding="utf-8", errors="replace")
            passages += split_passages(text, name)
    if not passages:
        return None, []
    retriever = bm25s.BM25()
    retriever.index(_tokenize([f"{p.title}\n{p.text}" for p in passages]), show_progress=False)
    return retriever, passages


def _snippet(passage: Passage, words: set[str]) -> str:
    """The passage from its first line that mentions a query word, cut to SNIPPET_CHARS."""
    lines = passage.text.splitlines()
    start = next((i for i, line in enumerate(lines) if words & set(re.findall(r"\w+", line.lower()))), 0)
    text = " ".join(line.strip() for line in lines[start:] if line.strip())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ..."


def search(root: str | Path, query: str, k: int = 3, path: str | None = None) -> dict[str, Any]:
    """The ``k`` best passages for ``query`` in the documents folder ``root`` (optionally one sub-path)."""
    base = Path(root).resolve()
    scope = resolve_scope(base, path)
    files = document_files(base, scope)
    if not files:
        raise ToolError(f"no .md/.txt files to search in {path or 'the documents folder'}")
    signature = tuple((f.relative_to(base).as_posix(), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    retriever, passages = _index(str(base), signature)
    words = [w for w in _tokenize([query])[0] if retriever is not None and w in retriever.vocab_dict]
    if not words:
        return {"query": query, "results": [], "note": "no passage shares a word with the query"}
    found, scores = retriever.retrieve([words], k=min(k, len(passages)), show_progress=False)
    results = [{"title": passages[i].title, "file": passages[i].file, "score": round(float(s), 3),
                "snippet": _snippet(passages[i], set(words))}
               for i, s in zip(found[0], scores[0]) if s > 0]
    return {"query": query, "results": results}


def documents_tool(folder: str | Path | None) -> Tool:
    """``search_documents`` over ``folder``; a missing folder fails here, with its path."""
    root = None
    if folder is not None:
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"documents folder {folder} does not exist or is not a folder; pass an existing one")

    def search_documents(query: str, k: int = 3, path: str | None = None) -> dict[str, Any]:
        if root is None:
            raise ToolError("no documents folder is set: pick one in the Tools panel or pass --docs DIR")
        return search(root, query, k, path)

    return Tool("search_documents", "Search the user's documents for passages about a query",
                {"type": "object",
                 "properties": {"query": {"type": "string", "minLength": 1},
                                "k": {"type": "integer", "minimum": 1, "maximum": 10},
                                "path": {"type": "string"}},
                 "required": ["query"]},
                search_documents)
