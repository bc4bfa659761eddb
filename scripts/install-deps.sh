#!/usr/bin/env bash
# Installs what pillar needs on Debian (12 "bookworm" or later), only what is missing:
# the build tools, protobuf-c and the onnx.proto it compiles, zlib (gzipped data sets in
# `pillar train`), the ONNX conformance data, Fashion-MNIST, Python with torch/onnx/numpy
# (model export and comparisons), valgrind (cachegrind: the memory traffic of
# bench/traffic.sh), and the benchmark peer ONNX Runtime from npm
# (onnxruntime-node, CPU build) into bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev zlib1g-dev
      libonnx-testdata dataset-fashion-mnist python3 python3-numpy python3-onnx python3-torch
      python3-torchvision libmicrohttpd-dev libcjson-dev curl wrk clang python3-venv bc
      valgrind)
# node and npm may come from elsewhere than Debian (e.g. an image with nodesource's
# nodejs, which bundles npm and conflicts with Debian's npm): take them as they are.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The peer for model comparisons and benchmarks. Its install script would fetch GPU
# files from a host we cannot reach; the CPU library is inside the npm package.
if [ ! -d bench/node_modules/onnxruntime-node ]; then
    echo "install-deps: npm install onnxruntime-node (bench/)"
    (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent >/dev/null)
fi
