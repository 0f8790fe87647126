#!/usr/bin/env bash
# Install every build/test dependency from Debian packages, then configure and
# build ckpt into ./build (and, with CKPT_FUZZ=1, the libFuzzer build into
# ./build-fuzz). Safe to run repeatedly: apt is skipped when nothing is missing
# and the CMake builds are incremental.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Always needed.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang clang-14 libclang-rt-14-dev llvm-14-dev
  libelf-dev libdw-dev elfutils libxxhash-dev nlohmann-json3-dev
  zlib1g-dev  # libz.a: the exec-form launcher links libelf statically
  libgtest-dev libgmock-dev libbenchmark-dev
  gdb binutils lldb python3 procps util-linux
  nodejs openjdk-17-jdk-headless  # the node and JVM end-to-end restore tests
  tmux less  # the terminal tests: a full-screen program in a tmux pane
)
# Installed when the distribution has them; their absence is not an error.
OPTIONAL_PACKAGES=(python3-lldb-14)

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

has_candidate() {
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [[ -n "$c" && "$c" != "(none)" ]]
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  is_installed "$p" || missing+=("$p")
done
missing_optional=()
for p in "${OPTIONAL_PACKAGES[@]}"; do
  # Only count an optional package as missing if apt knows about it (or has
  # no package lists at all yet, as on a fresh machine).
  if ! is_installed "$p"; then
    if has_candidate "$p" || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
      missing_optional+=("$p")
    fi
  fi
done

if (( ${#missing[@]} + ${#missing_optional[@]} > 0 )); then
  echo "setup: installing packages: ${missing[*]} ${missing_optional[*]}"
  if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    echo "setup: not root and sudo is not available; install these packages first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  for p in "${missing_optional[@]}"; do
    if has_candidate "$p"; then
      missing+=("$p")
    else
      echo "setup: optional package $p is not available, skipping"
    fi
  done
  if (( ${#missing[@]} > 0 )); then
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup: all packages already installed"
fi

echo "setup: configuring (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "setup: building (build/)"
cmake --build build

if [[ ! -f build/imgtool || ! -x build/imgtool ]]; then
  echo "setup: error: build/imgtool is not an executable file after the build" >&2
  exit 1
fi

if [[ "${CKPT_FUZZ:-0}" == 1 ]]; then
  echo "setup: configuring (build-fuzz/, clang-14, libFuzzer)"
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja \
    -DCKPT_BUILD_FUZZ=ON -DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_BENCH=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
  echo "setup: building (build-fuzz/)"
  cmake --build build-fuzz
fi

echo "setup: done (build/imgtool)"
