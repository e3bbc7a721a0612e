# Shared by scripts/up, scripts/test and scripts/bench. Source it; do not run it.
# Everything here is idempotent: on a machine that already has what it needs, it does nothing.

SG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SG_WASM_PACKAGES=(health auth metadata playback manifest probe uses-llm)
# faketime: the sign-in tests shift one host's clock to see a nonce expire (tests/node).
# ffmpeg (with ffprobe): the native transcoder's worker and its tests (native-transcoder).
# chromium: headless browser playback with hls.js and dash.js (tests/node/browser_playback.test.js).
SG_APT_PACKAGES=(redis-server wrk faketime ffmpeg chromium)

sg_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt-get as root, or through sudo when there is one.
sg_apt() {
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
    else
        sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
    fi
}

# Installs what a fresh Debian machine with only the Rust toolchain lacks.
sg_setup() {
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        sg_log "adding the wasm32-wasip2 Rust target"
        rustup target add wasm32-wasip2
    fi
    local missing=()
    local pkg
    for pkg in "${SG_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        sg_log "installing ${missing[*]}"
        sg_apt update -qq
        sg_apt install -y -qq --no-install-recommends "${missing[@]}"
    fi
    sg_node_setup
}

# What the end-to-end tests in tests/node use: their npm packages (viem, siwe, ethers, solc,
# OpenZeppelin, anvil; `npm ci` when node_modules is missing or package-lock.json changed since
# the last install) and Python's eth-account (tests/python). Node.js 20+ with npm and Python 3
# with pip must already be on the machine.
sg_node_setup() {
    local dir="$SG_ROOT/tests/node"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "Node.js 20 or newer and npm are needed for the end-to-end tests in tests/node, and are not on PATH" >&2
        return 1
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$major" -lt 20 ]; then
        echo "tests/node needs Node.js 20 or newer; this is $(node --version)" >&2
        return 1
    fi
    local stamp="$dir/node_modules/.streamgate-lock.sha256" want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        sg_log "installing the end-to-end tests' npm packages (tests/node: npm ci)"
        # No install scripts: the one there is (@foundry-rs/anvil) only links the binary that its
        # platform package already ships, and the tests run that binary directly.
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
        echo "$want" > "$stamp"
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "Python 3 with pip is needed for tests/python (eth-account), and python3 is not on PATH" >&2
        return 1
    fi
    if ! python3 -c 'import eth_account' 2>/dev/null; then
        sg_log "installing Python eth-account (tests/python)"
        python3 -m pip install --quiet --root-user-action=ignore -r "$SG_ROOT/tests/python/requirements.txt"
    fi
}

# Builds the Wasm components and every native binary, once; later runs are incremental.
sg_build() {
    # SG_SKIP_BUILD=1 reuses what is built (e.g. while another build holds the target dir).
    [ -n "${SG_SKIP_BUILD:-}" ] && return 0
    local args=()
    local pkg
    for pkg in "${SG_WASM_PACKAGES[@]}"; do args+=(-p "$pkg"); done
    sg_log "building Wasm components (wasm32-wasip2)"
    (cd "$SG_ROOT" && cargo build --locked --release --target wasm32-wasip2 "${args[@]}")
    sg_log "building the host and native services"
    (cd "$SG_ROOT" && cargo build --locked --release)
}

# Starts a private redis-server on $1 with its data in $2, unless one already answers there.
sg_redis_start() {
    local port="$1" dir="$2"
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p "$dir"
    redis-server "$SG_ROOT/infra/redis/redis.conf" --port "$port" --dir "$(cd "$dir" && pwd)" \
        --daemonize yes --pidfile "$(cd "$dir" && pwd)/redis.pid" --logfile "$(cd "$dir" && pwd)/redis.log"
    local i
    for i in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server did not start on port $port; see $dir/redis.log" >&2
    return 1
}

sg_redis_stop() {
    local dir="$1"
    if [ -f "$dir/redis.pid" ]; then
        kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        rm -f "$dir/redis.pid"
    fi
}

# Secrets live in the state directory, generated once, never in the repo. Exports them as
# SPIN_VARIABLE_* unless the environment already sets them.
sg_secrets() {
    local dir="$1" file="$1/secrets.env"
    mkdir -p "$dir"
    if [ ! -f "$file" ]; then
        (
            umask 077
            for name in session_secret playback_secret events_secret; do
                printf 'SPIN_VARIABLE_%s=%s\n' "${name^^}" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            done > "$file"
        )
    fi
    local line key
    while IFS= read -r line; do
        key="${line%%=*}"
        [ -n "${!key:-}" ] || export "$line"
    done < "$file"
}
