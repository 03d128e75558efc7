"""ledger's build next to its peers' build of the same rows: openai-batch, batchata, openbatch.

    .venv/bin/python bench/peers.py [--rows 100000] [--repeat 3]

Each peer is installed from PyPI into its own virtualenv under build/peers/<name> (once; a peer
that needs a newer Python than this one gets the first python3.12/3.13 found on PATH). A peer that
cannot be installed or fails on the rows is skipped with a message saying why. Every contender
reads the same JSONL of short chat prompts and writes Batch API chat lines for gpt-4o-mini (shards
of at most 50,000 requests where the peer leaves that to its user), in a child process of its own,
in turns, `--repeat` times; the medians are printed with peak RSS (VmHWM).

What each does besides writing lines differs, and is printed: ledger also checks each request
against the model table, deduplicates custom_ids, hashes input and shards, fsyncs, and records
the run, its jobs and one row per request in its database (`build_run`, the step of
`ledger submit --dry-run`, start-up excluded as it is for the peers).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / "build" / "peers"
MODEL = "gpt-4o-mini"
SHARD = 50_000

#: Reads its peak resident memory, printed with the seconds by every peer script.
_FOOTER = """
def _peak_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0

print(json.dumps({"seconds": time.perf_counter() - _started, "peak_mib": _peak_mib()}))
"""

#: Each peer's build, as documented in its README: argv is input, output directory, model.
SCRIPTS = {
    "openai-batch": """
import json, sys, time
from openai_batch import Batch
from openai_batch.providers import get_provider_by_name
source, out, model = sys.argv[1:4]
_started = time.perf_counter()
provider = get_provider_by_name("openai")
batch, shard = None, 0
with open(source, encoding="utf-8") as rows:
    for line in rows:
        row = json.loads(line)
        if batch is None or batch.n_requests >= 50_000:
            if batch is not None:
                batch.__exit__(None, None, None)
            shard += 1
            batch = Batch(submission_input_file=f"{out}/shard-{shard}.jsonl", provider=provider)
        batch.add_to_batch(model=model, messages=[{"role": "user", "content": row["prompt"]}])
batch.__exit__(None, None, None)
""",
    "openbatch": """
import json, sys, time
from openbatch import BatchCollector
source, out, model = sys.argv[1:4]
_started = time.perf_counter()
collector, count, shard = None, 0, 0
with open(source, encoding="utf-8") as rows:
    for line in rows:
        row = json.loads(line)
        if collector is None or count == 50_000:
            shard += 1
            collector, count = BatchCollector(batch_file_path=f"{out}/shard-{shard}.jsonl"), 0
        collector.chat.completions.create(
            custom_id=row["id"], model=model, messages=[{"role": "user", "content": row["prompt"]}]
        )
        count += 1
""",
    "batchata": """
import json, sys, time
from batchata.core.job import Job
from batchata.providers.openai.message_prepare import prepare_jsonl_request
source, out, model = sys.argv[1:4]
_started = time.perf_counter()
writer, count, shard = None, 0, 0
with open(source, encoding="utf-8") as rows:
    for line in rows:
        row = json.loads(line)
        if writer is None or count == 50_000:
            if writer is not None:
                writer.close()
            shard += 1
            writer, count = open(f"{out}/shard-{shard}.jsonl", "w", encoding="utf-8"), 0
        job = Job(id=row["id"], model=model, messages=[{"role": "user", "content": row["prompt"]}])
        # What OpenAIProvider.create_batch writes for each job (it joins them in memory).
        writer.write(json.dumps(prepare_jsonl_request(job)) + "\\n")
        count += 1
writer.close()
""",
}


@dataclass
class Peer:
    name: str
    python: Path | None = None
    skipped: str | None = None


def _pythons() -> list[str]:
    """This Python first, then newer ones (batchata needs 3.12): on PATH, or pyenv's."""
    found = [sys.executable]
    for name in ("python3.12", "python3.13"):
        path = shutil.which(name)
        if path and subprocess.run([path, "-c", ""], capture_output=True).returncode == 0:
            found.append(path)
    pyenv = Path.home() / ".pyenv" / "versions"
    found += sorted(str(p) for p in pyenv.glob("3.1[23]*/bin/python") if str(p) not in found)
    return found


def install(name: str) -> Peer:
    """The peer's virtualenv under build/peers, installed once; or why it could not be."""
    directory = PEERS_DIR / name
    marker = directory / ".installed"
    if marker.exists():
        return Peer(name, directory / "bin" / "python")
    last = ""
    for python in _pythons():
        shutil.rmtree(directory, ignore_errors=True)
        made = subprocess.run(
            [python, "-m", "venv", str(directory)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            last = made.stderr.strip().splitlines()[-1:]
            continue
        pip = subprocess.run(
            [str(directory / "bin" / "pip"), "install", "-q", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if pip.returncode == 0 and _importable(directory, name):
            marker.write_text(python + "\n")
            return Peer(name, directory / "bin" / "python")
        errors = [line for line in pip.stderr.splitlines() if line.startswith("ERROR")]
        last = errors[-1] if errors else pip.stderr.strip()[-200:]
    shutil.rmtree(directory, ignore_errors=True)
    return Peer(name, skipped=f"cannot be installed ({last})")


#: The module each peer's script imports.
MODULES = {"openai-batch": "openai_batch", "openbatch": "openbatch", "batchata": "batchata"}


def _importable(directory: Path, name: str) -> bool:
    """Whether the peer imports; a dependency its wheel forgot to name (openai-batch's openai
    wanted httpx here) is installed, once each, until it does."""
    python = str(directory / "bin" / "python")
    for _ in range(3):
        tried = subprocess.run(
            [python, "-c", f"import {MODULES[name]}"], capture_output=True, text=True, check=False
        )
        if tried.returncode == 0:
            return True
        missing = re.search(r"No module named '([\w.]+)'", tried.stderr)
        if missing is None:
            return False
        package = missing.group(1).split(".")[0]
        subprocess.run(
            [str(directory / "bin" / "pip"), "install", "-q", package],
            capture_output=True,
            check=False,
        )
    return False


def generate(path: Path, rows: int) -> None:
    """The same short prompts as bench/build.py."""
    spec = importlib.util.spec_from_file_location("bench_build", ROOT / "bench" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(path, rows)


def _fresh(out: Path) -> None:
    """An empty `out`, and every file written so far on disk: a contender's fsyncs then write
    its own bytes, not the 20 MB the one before it left unwritten (a peer syncs nothing), which
    slowed ledger's build by 5-20% (0.64-0.74 s against 0.60-0.61 s)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.sync()


def run_peer(peer: Peer, source: Path, out: Path) -> dict[str, Any]:
    """One timed build by `peer` in its own interpreter."""
    assert peer.python is not None
    _fresh(out)
    done = subprocess.run(
        [str(peer.python), "-c", SCRIPTS[peer.name] + _FOOTER, str(source), str(out), MODEL],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    lines = sum(1 for shard in out.iterdir() for _ in shard.open("rb"))
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "lines": lines}


def run_ledger(source: Path, out: Path) -> dict[str, Any]:
    """One timed `build_run` (bench/build.py's child), in its own interpreter."""
    _fresh(out)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "build.py"),
            "--child",
            str(source),
            str(out),
            "plain",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(done.stdout)
    return {"seconds": result["seconds"], "peak_mib": result["peak_mib"], "lines": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    peers = [install(name) for name in SCRIPTS]
    results: dict[str, list[dict[str, Any]]] = {"ledger": []}
    with tempfile.TemporaryDirectory(prefix="ledger-peers-") as scratch:
        directory = Path(scratch)
        source = directory / "input.jsonl"
        generate(source, args.rows)
        for _ in range(args.repeat):  # in turns, so a busy machine slows each alike
            results["ledger"].append(run_ledger(source, directory / "ledger"))
            for peer in peers:
                if peer.skipped:
                    continue
                try:
                    results.setdefault(peer.name, []).append(
                        run_peer(peer, source, directory / peer.name)
                    )
                except RuntimeError as error:
                    peer.skipped = f"failed on the rows ({error})"
    ledger = statistics.median(r["seconds"] for r in results["ledger"])
    print(f"{args.rows:,} short chat prompts, medians of {args.repeat} runs in turns")
    print(f"  {'ledger build_run':<18} {ledger:7.2f} s  1.00x  (checks, dedupes, records)")
    for peer in peers:
        if peer.skipped:
            print(f"  {peer.name:<18} skipped: {peer.skipped}")
            continue
        runs = results[peer.name]
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mib"] for r in runs)
        print(
            f"  {peer.name:<18} {seconds:7.2f} s  {seconds / ledger:4.2f}x ledger's time  "
            f"peak {peak:.0f} MiB  ({runs[0]['lines']:,} lines written)"
        )


if __name__ == "__main__":
    main()
