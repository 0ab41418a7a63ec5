"""Where a runtime on this machine keeps its models: the folders whose changes change what it serves.

Ollama (manifest/paths.go, envconfig/config.go at ollama/ollama fb30760): `$OLLAMA_MODELS` or
`~/.ollama/models` (the Linux service's home is /usr/share/ollama); a pull downloads and verifies the
blobs first and writes `manifests/<host>/<namespace>/<model>/<tag>` last, and `ollama rm` deletes that
file — so the manifests folder changes exactly when the list does. LM Studio keeps
`~/.lmstudio/models/<publisher>/<model>/<file>` (older versions `~/.cache/lm-studio/models`).
llama.cpp's router (llama-server without a model) serves `--models-dir` (env `LLAMA_ARG_MODELS_DIR`)
and its download cache (`LLAMA_CACHE`, else `~/.cache/llama.cpp`); its `/props` says only
`"role": "router"`, so the folders come from the listening process's command line and environment
(/proc; Linux only). The router rescans its folders only when asked (`GET /models?reload=1`,
tools/server/server-models.cpp), which the daemon does when one of them changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from syncd.model import Kind

OLLAMA_SERVICE_MODELS = Path("/usr/share/ollama/.ollama/models")
# a runtime whose kind syncd has not learnt yet is recognised by its process, else by its port
_EXES = {"ollama": Kind.OLLAMA, "llama-server": Kind.LLAMACPP, "lms": Kind.LMSTUDIO,
         "lm-studio": Kind.LMSTUDIO, "lm studio": Kind.LMSTUDIO}
_PORTS = {11434: Kind.OLLAMA, 1234: Kind.LMSTUDIO}
_MODEL_ARGS = ("-m", "--model", "-hf", "-hfr", "--hf-repo", "-mu", "--model-url")


@dataclass(frozen=True, slots=True)
class Process:
    """The command line and (when readable) the environment of the process behind a port."""

    argv: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def exe(self) -> str:
        return os.path.basename(self.argv[0]).lower() if self.argv else ""

    def option(self, *names: str) -> str | None:
        """The value of `--name value` or `--name=value`, the last one given."""
        found = None
        for i, arg in enumerate(self.argv):
            for name in names:
                if arg == name and i + 1 < len(self.argv):
                    found = self.argv[i + 1]
                elif arg.startswith(name + "="):
                    found = arg[len(name) + 1 :]
        return found


@dataclass(frozen=True, slots=True)
class LocalStore:
    """One provider of one target that runs on this machine; `folders` empty: no store readable."""

    target: Path
    provider_id: str
    runtime: str  # a Kind value, or "" when unknown
    folders: tuple[Path, ...]
    rescan: bool = False  # the server lists a changed folder only after `?reload=1` (llama.cpp router)


def readable_dir(path: Path) -> bool:
    try:
        return path.is_dir() and os.access(path, os.R_OK | os.X_OK)
    except OSError:
        return False


def _unique_readable(paths: Sequence[Path]) -> tuple[Path, ...]:
    out: list[Path] = []
    for p in paths:
        p = Path(os.path.abspath(p.expanduser()))
        if p not in out and readable_dir(p):
            out.append(p)
    return tuple(out)


def ollama_folders(env: Mapping[str, str], home: Path, server: Process | None = None) -> tuple[Path, ...]:
    roots = [Path(v) for v in (env.get("OLLAMA_MODELS"), server and server.env.get("OLLAMA_MODELS")) if v]
    roots += [home / ".ollama" / "models", OLLAMA_SERVICE_MODELS]
    return _unique_readable([r / "manifests" for r in roots])


def lmstudio_folders(home: Path) -> tuple[Path, ...]:
    return _unique_readable([home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"])


def llamacpp_folders(server: Process | None, env: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    """A router's models folder and download cache; nothing for a server of one model (or unknown)."""
    if server is None or server.option(*_MODEL_ARGS) is not None:
        return ()
    senv = server.env
    folders = [Path(v) for v in (server.option("--models-dir"), senv.get("LLAMA_ARG_MODELS_DIR")) if v]
    cache = senv.get("LLAMA_CACHE") or env.get("LLAMA_CACHE")
    xdg = senv.get("XDG_CACHE_HOME") or env.get("XDG_CACHE_HOME")
    if cache:
        folders.append(Path(cache))
    else:
        folders.append(Path(xdg) / "llama.cpp" if xdg else home / ".cache" / "llama.cpp")
    return _unique_readable(folders)


def guess_runtime(kind: str | None, port: int | None, server: Process | None) -> str:
    if kind:
        return kind
    if server is not None:
        exe = server.exe
        for name, k in _EXES.items():
            if exe == name or exe.startswith(name):
                return str(k)
    return str(_PORTS[port]) if port in _PORTS else ""


def folders_for(runtime: str, env: Mapping[str, str], home: Path,
                server: Process | None) -> tuple[Path, ...]:
    if runtime == Kind.OLLAMA:
        return ollama_folders(env, home, server)
    if runtime == Kind.LMSTUDIO:
        return lmstudio_folders(home)
    if runtime == Kind.LLAMACPP:
        return llamacpp_folders(server, env, home)
    return ()


# --- the process behind a port (Linux /proc) ---------------------------------------------------


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def process_on_port(port: int, proc: Path = Path("/proc")) -> Process | None:
    """The process listening on `port` on this machine, if /proc shows it to this user."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:
            continue  # another user's process
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    return _process(pid)
            except OSError:
                continue
    return None


def _process(pid: Path) -> Process:
    try:
        argv = tuple(a for a in (pid / "cmdline").read_bytes().decode(errors="replace").split("\0") if a)
    except OSError:
        argv = ()
    env: dict[str, str] = {}
    try:
        for item in (pid / "environ").read_bytes().decode(errors="replace").split("\0"):
            key, sep, value = item.partition("=")
            if sep:
                env[key] = value
    except OSError:
        pass
    return Process(argv, env)
