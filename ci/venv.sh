# Shared helper for ci/ scripts: Python virtualenvs under <repo>/.venv (gitignored).
# Source it, then call `glia_venv NAME DIST==VERSION [more pip args...]`.
#
# GLIA_VENV_DIR overrides the parent directory (default <repo root>/.venv). A venv is
# reused when the pinned distribution is already installed at that version, so calling
# this again is cheap and needs no network.

GLIA_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GLIA_VENV_DIR="${GLIA_VENV_DIR:-$GLIA_REPO_ROOT/.venv}"

# glia_venv NAME DIST==VERSION [EXTRA_PIP_ARGS...]
# Creates $GLIA_VENV_DIR/NAME if needed and makes sure DIST is installed at VERSION; its
# messages (and pip's) go to stderr. The venv's python is $GLIA_VENV_DIR/NAME/bin/python.
# DIST may name extras (`matrix-nio[e2e]==0.26.0`), and EXTRA_PIP_ARGS may pin more
# distributions (`vodozemac==0.10.0`): the venv counts as ready only when every pinned
# `DIST==VERSION` argument is installed at its version.
glia_venv() {
    local name="$1" spec="$2"
    shift 2
    local dir="$GLIA_VENV_DIR/$name"
    local py="$dir/bin/python"
    local python="${GLIA_PYTHON:-python3}"

    if [[ ! -x "$py" ]]; then
        echo "creating venv $dir" >&2
        mkdir -p "$GLIA_VENV_DIR"
        "$python" -m venv "$dir"
    fi
    local all="$spec${*:+ $*}" arg dist want have missing=""
    for arg in "$spec" "$@"; do
        [[ "$arg" == -* || "$arg" != *==* ]] && continue
        dist="${arg%%==*}"
        dist="${dist%%\[*}"
        want="${arg#*==}"
        have="$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$dist" 2>/dev/null || true)"
        if [[ "$have" != "$want" ]]; then
            missing+=" $dist${have:+ (had $have)}"
        fi
    done
    if [[ -z "$missing" ]]; then
        echo "$all already installed in $dir" >&2
        return 0
    fi
    echo "installing $all into $dir (missing:$missing)" >&2
    local start=$SECONDS
    "$py" -m pip install --quiet "$spec" "$@" >&2
    echo "installed $all in $((SECONDS - start)) s" >&2
}
