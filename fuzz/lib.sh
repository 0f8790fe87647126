# What run-all.sh (CI) and campaign.sh (long runs) share; sourced by both.
#   FUZZ_ALL_TARGETS        every libFuzzer target of fuzz/CMakeLists.txt
#   FUZZ_IMAGE_TARGETS      those whose input is a whole image file
#   FUZZ_LIMITS             per-input limits of every run
#   fuzz_check_targets BUILD TARGET...   all known and built (with make_seeds)?
#   fuzz_prepare_seeds SRC BUILD SEEDS LOG TARGET...
#       make_seeds' fresh seeds in SEEDS/<target>/, plus the committed
#       fuzz/corpus/<target>/*, fuzz/regressions/** and, for image targets,
#       tests/corpus/damaged/*
#   fuzz_dict_args SRC TARGET   the -dict= argument of image targets

FUZZ_ALL_TARGETS="fuzz_image_reader fuzz_tables fuzz_nt_file fuzz_llvm_diff fuzz_imgtool_info"
FUZZ_IMAGE_TARGETS=" fuzz_image_reader fuzz_llvm_diff fuzz_imgtool_info "
FUZZ_LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024)

fuzz_check_targets() {
  local build=$1 t
  shift
  for t in "$@"; do
    if [[ " $FUZZ_ALL_TARGETS " != *" $t "* ]]; then
      echo "fuzz: unknown target $t (known: $FUZZ_ALL_TARGETS)" >&2
      return 2
    fi
  done
  for t in "$@" make_seeds; do
    if [[ ! -x "$build/fuzz/$t" ]]; then
      echo "fuzz: $build/fuzz/$t is missing; build with -DCKPT_BUILD_FUZZ=ON first" >&2
      return 2
    fi
  done
}

# fuzz_add_inputs SEEDS TARGET PREFIX FILE...: copies regular files (not
# *.md) into the seed folder of TARGET under a prefixed name (sources may
# share file names).
fuzz_add_inputs() {
  local seeds=$1 target=$2 prefix=$3 f
  shift 3
  for f in "$@"; do
    [[ -f "$f" && "$f" != *.md ]] || continue
    cp "$f" "$seeds/$target/$prefix-$(basename "$f")"
  done
}

fuzz_prepare_seeds() {
  local src=$1 build=$2 seeds=$3 log=$4 t
  shift 4
  rm -rf "$seeds"
  mkdir -p "$seeds"
  if ! "$build/fuzz/make_seeds" "$seeds" >"$log" 2>&1; then
    echo "fuzz: make_seeds failed:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  for t in "$@"; do
    mkdir -p "$seeds/$t"
    if [[ -d "$src/fuzz/corpus/$t" ]]; then
      fuzz_add_inputs "$seeds" "$t" corpus "$src/fuzz/corpus/$t"/*
    fi
    # Regressions: fuzz/regressions/<target>/* for that target, anything
    # directly in fuzz/regressions/ for all (every target takes any input).
    if [[ -d "$src/fuzz/regressions/$t" ]]; then
      fuzz_add_inputs "$seeds" "$t" regression "$src/fuzz/regressions/$t"/*
    fi
    if [[ -d "$src/fuzz/regressions" ]]; then
      fuzz_add_inputs "$seeds" "$t" regression "$src/fuzz/regressions"/*
    fi
    if [[ "$FUZZ_IMAGE_TARGETS" == *" $t "* && -d "$src/tests/corpus/damaged" ]]; then
      fuzz_add_inputs "$seeds" "$t" damaged "$src/tests/corpus/damaged"/*
    fi
  done
}

fuzz_dict_args() {
  local src=$1 t=$2
  if [[ "$FUZZ_IMAGE_TARGETS" == *" $t "* && -f "$src/fuzz/image.dict" ]]; then
    echo "-dict=$src/fuzz/image.dict"
  fi
}
