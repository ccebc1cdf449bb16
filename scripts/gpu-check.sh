#!/usr/bin/env bash
# The GPU check: attribution patching on CPU, CUDA (when onnxruntime-node's CUDA libraries are present) and WebGPU
# (on whatever adapter Dawn finds), for a GPT-2-small and a Qwen2.5-0.5B shape with random weights written at run
# time; every device's outputs against the CPU's, and the time per run (scripts/gpu-check.ts does the work).
#
#   scripts/gpu-check.sh --prepare        here, with node_modules: packs what a bare machine lacks into .gpu-check/
#                                         (Node, onnxruntime-node's linux-x64 binaries, the bundled check, the Vulkan
#                                         loader .deb); about 45 MB. .gitignore keeps it out of commits: name it
#                                         in the device tool's `carry` (carry: [".gpu-check"]) to send it along
#   scripts/gpu-check.sh [ARGS]           anywhere, no network: runs the check (ARGS: --tiny for small shapes,
#                                         --devices cpu,webgpu, --repeats N, --json FILE)
#
# On a machine without Node or the Vulkan loader, the kit supplies them from .gpu-check/ (unpacked under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.gpu-check
UNPACKED=/tmp/atp-gpu-check-kit

if [ "${1:-}" = --prepare ]; then
  rm -rf "$KIT" && mkdir -p "$KIT"
  # One CommonJS file; onnxruntime-node stays external (a native addon), loaded from the kit's node_modules.
  node_modules/.bin/esbuild scripts/gpu-check.ts --bundle --platform=node --target=node20 --format=cjs \
    --external:onnxruntime-node --log-level=warning --outfile="$KIT/gpu-check.js"
  if grep -q "require(\"tokenizers\")" "$KIT/gpu-check.js"; then echo "gpu-check.js must not need the tokenizers addon" >&2; exit 1; fi
  stage=$(mktemp -d)
  ort=node_modules/onnxruntime-node
  mkdir -p "$stage/onnxruntime-node/bin/napi-v6/linux" "$stage/onnxruntime-common"
  cp -r "$ort/package.json" "$ort/dist" "$stage/onnxruntime-node/"
  cp -r "$ort/bin/napi-v6/linux/x64" "$stage/onnxruntime-node/bin/napi-v6/linux/"
  cp -r node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist "$stage/onnxruntime-common/"
  tar -C "$stage" -cf - onnxruntime-node onnxruntime-common | xz -T0 -3 > "$KIT/node_modules.tar.xz"
  rm -rf "$stage"
  xz -T0 -3 -c "$(command -v node)" > "$KIT/node.xz"
  # The Vulkan loader (Debian's libvulkan1): Dawn dlopens libvulkan.so.1, which bare GPU machines often lack.
  (cd "$KIT" && apt-get download libvulkan1 >/dev/null 2>&1) || echo "note: could not download libvulkan1; the kit relies on the target's loader" >&2
  du -sh "$KIT"
  exit 0
fi

# Node: the machine's, else the kit's.
NODE=$(command -v node || true)
if [ -z "$NODE" ]; then
  [ -f "$KIT/node.xz" ] || { echo "no node on PATH and no $KIT/node.xz: run scripts/gpu-check.sh --prepare where Node is" >&2; exit 2; }
  mkdir -p "$UNPACKED" && xz -dc "$KIT/node.xz" > "$UNPACKED/node" && chmod +x "$UNPACKED/node"
  NODE="$UNPACKED/node"
fi

# The Vulkan loader, from the kit's .deb (unpacked under /tmp, never over /), when the system has none.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
  for deb in "$KIT"/*.deb; do
    [ -f "$deb" ] && dpkg -x "$deb" "$UNPACKED/root"
  done
  [ -d "$UNPACKED/root" ] && export LD_LIBRARY_PATH="$UNPACKED/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# NVIDIA's Vulkan driver manifest is not always where the loader looks (containers put it under /usr/local/nvidia).
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -e /proc/driver/nvidia/version ]; then
  for manifest in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$manifest" ]; then export VK_DRIVER_FILES="$manifest"; break; fi
  done
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "node $("$NODE" --version); VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"

if [ -d node_modules/onnxruntime-node ] && [ -d node_modules/tsx ]; then
  exec "$NODE" --import tsx scripts/gpu-check.ts "$@"
fi
[ -f "$KIT/gpu-check.js" ] || { echo "no node_modules and no $KIT/gpu-check.js: run scripts/gpu-check.sh --prepare first" >&2; exit 2; }
mkdir -p "$UNPACKED/modules"
[ -d "$UNPACKED/modules/onnxruntime-node" ] || xz -dc "$KIT/node_modules.tar.xz" | tar -C "$UNPACKED/modules" -xf -
export NODE_PATH="$UNPACKED/modules"
exec "$NODE" "$KIT/gpu-check.js" "$@"
