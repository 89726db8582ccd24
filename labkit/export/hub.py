"""Upload an adapter or a merged model folder to the Hugging Face Hub.

The token is read from the environment (``HF_TOKEN``) and handed to ``huggingface_hub`` only: it is never
written to the run folder, printed, or kept in an error message.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.export.errors import HubUnavailable

TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
NEVER_UPLOAD = ["*.partial", "*.partial/*", "*.FAILED", ".cache/*", "*.tmp"]


def _token() -> str:
    for name in TOKEN_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    raise HubUnavailable("no Hugging Face token: set the HF_TOKEN environment variable (on Colab: the key icon, "
                         "Secrets, add HF_TOKEN with a write token from huggingface.co/settings/tokens)")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _describe(path: Path) -> str:
    if (path / "adapter_config.json").exists():
        return "adapter"
    if (path / "config.json").exists() or list(path.glob("*.gguf")):
        return "model"
    raise ValueError(f"{path} holds neither an adapter (adapter_config.json) nor a model (config.json or a .gguf "
                     f"file): give run/adapter or run/export/merged")


def push_to_hub(path: str | Path, repo_id: str, private: bool = True, commit_message: str | None = None) -> str:
    """Upload the folder ``path`` (an adapter or a merged model, with its model card README.md when it has one) to
    ``repo_id``; returns the repository URL."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a folder: give run/adapter or run/export/merged")
    if "/" not in repo_id:
        raise ValueError(f"repo_id={repo_id!r} must look like 'your-username/model-name'")
    kind = _describe(path)
    if not (path / "README.md").exists():  # upload_folder sends the card when it is there
        print(f"labkit: {path} has no model card (README.md); `labkit export` writes one into run/export/adapter, "
              "run/export/merged and run/export")
    if _offline():
        raise HubUnavailable("cannot push to the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1). Unset it "
                             "on a machine with internet access and try again; the files stay in " + str(path))
    token = _token()
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=str(path), repo_id=repo_id, repo_type="model",
                                 ignore_patterns=NEVER_UPLOAD,
                                 commit_message=commit_message or f"labkit: upload {kind}")
    except Exception as err:  # network, auth and hub errors all end here; never echo the token
        message = str(err).replace(token, "***")
        raise HubUnavailable(f"could not push {path} to {repo_id} ({type(err).__name__}: {message}). Check the "
                             f"internet connection and that HF_TOKEN has write access; the files stay in "
                             f"{path}") from None
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/{repo_id}")
