# Shared by scripts/up, scripts/test and scripts/bench. Source it; do not run it.
# Everything here is idempotent: on a machine that already has what it needs, it does nothing.

SG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SG_WASM_PACKAGES=(health auth metadata playback playlists web probe uses-llm)
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
    # The host tests' core-module probe (tests/host-tests/tests/core_module.rs): an app built for
    # wasm32-wasip1, which the host turns into a component at load time as Spin does.
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
        sg_log "adding the wasm32-wasip1 Rust target"
        rustup target add wasm32-wasip1
    fi
    local missing=()
    local pkg
    for pkg in "${SG_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    # kubectl (its `kustomize`) and openssl: the offline checks of infra/k8s (tests/python).
    # Debian's kubernetes-client only where no kubectl is on PATH (the machine may bring a newer one).
    command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    # promtool (Debian's prometheus package): `promtool check rules` on infra/observability in
    # tests/node/metrics.test.js; wherever a promtool is already on PATH, that one.
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
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
    if ! python3 -c 'import eth_account, pytest, kubernetes_validate, schemathesis, openapi_spec_validator' 2>/dev/null; then
        sg_log "installing tests/python's packages (eth-account, pytest, kubernetes-validate, schemathesis, openapi-spec-validator)"
        python3 -m pip install --quiet --root-user-action=ignore -r "$SG_ROOT/tests/python/requirements.txt"
    fi
}

# Builds the Wasm components and every native binary, once; later runs are incremental.
sg_build() {
    # SG_SKIP_BUILD=1 reuses what is built (e.g. while another build holds the target dir).
    [ -n "${SG_SKIP_BUILD:-}" ] && return 0
    sg_web_build
    local args=()
    local pkg
    for pkg in "${SG_WASM_PACKAGES[@]}"; do args+=(-p "$pkg"); done
    sg_log "building Wasm components (wasm32-wasip2)"
    (cd "$SG_ROOT" && cargo build --locked --release --target wasm32-wasip2 "${args[@]}")
    sg_log "building the probe as a core module (wasm32-wasip1)"
    (cd "$SG_ROOT" && cargo build --locked --release --target wasm32-wasip1 -p probe)
    sg_log "building the host and native services"
    (cd "$SG_ROOT" && cargo build --locked --release)
}

# The web app's front end (web/): its npm packages (`npm ci` when node_modules is missing or
# package-lock.json changed since the last install), then `npm run build` into web/dist, which
# the web component embeds (components/web/build.rs). Vite rebuilds in a few seconds; the
# component's build only reruns when web/dist changed.
sg_web_build() {
    local dir="$SG_ROOT/web"
    local stamp="$dir/node_modules/.streamgate-lock.sha256" want
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        sg_log "installing the web app's npm packages (web: npm ci)"
        (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund)
        echo "$want" > "$stamp"
    fi
    sg_log "building the web app (web: vite build)"
    (cd "$dir" && npm run --silent build)
}

# The private Redis's users (infra/redis/users.acl.template): default off, one for operators and
# the liveness check, one for the app (XADD on the job stream), one for the workers. Their
# passwords come from sg_secrets.
SG_REDIS_ADMIN_USER=streamgate-admin
SG_REDIS_APP_USER=streamgate-app
SG_REDIS_WORKER_USER=streamgate-worker

# Renders the ACL template into $1 (mode 600) with the SHA-256 of each password: the file holds no
# password, and none passes through a command line (printf is a builtin).
sg_redis_acl() {
    local out="$1" admin app worker
    : "${STREAMGATE_REDIS_ADMIN_PASSWORD:?call sg_secrets first}" "${STREAMGATE_REDIS_APP_PASSWORD:?}" \
        "${STREAMGATE_REDIS_WORKER_PASSWORD:?}"
    admin="$(printf %s "$STREAMGATE_REDIS_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)"
    app="$(printf %s "$STREAMGATE_REDIS_APP_PASSWORD" | sha256sum | cut -d' ' -f1)"
    worker="$(printf %s "$STREAMGATE_REDIS_WORKER_PASSWORD" | sha256sum | cut -d' ' -f1)"
    (
        umask 077
        sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
            -e "s/@ADMIN_PASSWORD_SHA256@/$admin/" -e "s/@APP_PASSWORD_SHA256@/$app/" \
            -e "s/@WORKER_PASSWORD_SHA256@/$worker/" \
            "$SG_ROOT/infra/redis/users.acl.template" > "$out.tmp"
        chmod 600 "$out.tmp"
        mv -f "$out.tmp" "$out"
    )
}

# redis-cli on 127.0.0.1:$1 as the admin user; the password goes through the environment
# (REDISCLI_AUTH), not argv.
sg_redis_cli() {
    local port="$1"
    shift
    REDISCLI_AUTH="$STREAMGATE_REDIS_ADMIN_PASSWORD" redis-cli --user "$SG_REDIS_ADMIN_USER" \
        -h 127.0.0.1 -p "$port" "$@"
}

# `redis://<user>:<password>@127.0.0.1:<port>` of the private Redis, for user $1 (app|worker).
sg_redis_url() {
    case "$1" in
        app) printf 'redis://%s:%s@127.0.0.1:%s' "$SG_REDIS_APP_USER" "$STREAMGATE_REDIS_APP_PASSWORD" "$2" ;;
        worker) printf 'redis://%s:%s@127.0.0.1:%s' "$SG_REDIS_WORKER_USER" "$STREAMGATE_REDIS_WORKER_PASSWORD" "$2" ;;
    esac
}

# Starts a private redis-server on 127.0.0.1:$1 with its data in $2 and the users of
# infra/redis/users.acl.template (passwords from sg_secrets), unless ours already answers there.
sg_redis_start() {
    local port="$1" dir="$2" answer
    answer="$(sg_redis_cli "$port" ping 2>&1)" || answer=""
    case "$answer" in
        PONG) return 0 ;;
        "") ;;
        *)
            echo "something answers on 127.0.0.1:$port but does not accept this state directory's Redis users" \
                "(a Redis without passwords, e.g. one an older scripts/up left running?): stop it, or choose another REDIS_PORT" >&2
            return 1
            ;;
    esac
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    sg_redis_acl "$dir/users.acl"
    redis-server "$SG_ROOT/infra/redis/redis.conf" --port "$port" --dir "$dir" --aclfile "$dir/users.acl" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    local i
    for i in $(seq 1 100); do
        [ "$(sg_redis_cli "$port" ping 2>/dev/null)" = PONG ] && return 0
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

# Secrets live in the state directory, generated once, never in the repo: the app's keys
# (exported as SPIN_VARIABLE_* unless the environment already sets them) and the private Redis's
# passwords (STREAMGATE_REDIS_{ADMIN,APP,WORKER}_PASSWORD, shell variables only, not exported: the
# scripts hand each process the one URL it needs). A secrets file from before a secret existed
# gets it appended.
SG_SECRET_NAMES=(
    SPIN_VARIABLE_SESSION_SECRET SPIN_VARIABLE_PLAYBACK_SECRET SPIN_VARIABLE_EVENTS_SECRET
    STREAMGATE_REDIS_ADMIN_PASSWORD STREAMGATE_REDIS_APP_PASSWORD STREAMGATE_REDIS_WORKER_PASSWORD
)
sg_secrets() {
    local dir="$1" file="$1/secrets.env" name
    mkdir -p "$dir"
    (
        umask 077
        touch "$file"
        for name in "${SG_SECRET_NAMES[@]}"; do
            grep -q "^$name=" "$file" ||
                printf '%s=%s\n' "$name" "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> "$file"
        done
    )
    local line key
    while IFS= read -r line; do
        key="${line%%=*}"
        [ -n "$key" ] && [ -z "${!key:-}" ] || continue
        case "$key" in
            SPIN_VARIABLE_*) export "$line" ;;
            *) printf -v "$key" '%s' "${line#*=}" ;;
        esac
    done < "$file"
}

# A private Prometheus, for `scripts/up --observe` and tests/node/observe.test.js (one function,
# so the test checks what the script runs): it scrapes the host's admin listener, the origin's
# and the worker's metrics listeners (HOST:PORT each; an empty one is left out) with the alert
# rules of infra/observability/alerts.yml loaded, keeps its configuration and its data under DIR
# and serves its UI and API on LISTEN. SG_PROMETHEUS_INTERVAL (5s) is both the scrape and the
# rule evaluation interval. It replaces the calling shell (exec), so that the caller's `$!` or
# child process is Prometheus itself, and runs in a session of its own (setsid execs without
# forking in a background job), so that a terminal's Ctrl-C reaches only the caller, which stops it.
#   sg_prometheus_run DIR LISTEN HOST_TARGET ORIGIN_TARGET WORKER_TARGET
sg_prometheus_run() {
    local dir="$1" listen="$2" interval="${SG_PROMETHEUS_INTERVAL:-5s}"
    local jobs=(streamgate-host streamgate-origin streamgate-worker) targets=("$3" "$4" "$5") i
    mkdir -p "$dir/data"
    # The job names are those of infra/observability/prometheus.yml; the rules are read in place,
    # so an edit of alerts.yml shows after a restart.
    {
        echo "# Written by sg_prometheus_run (scripts/lib.sh) at each start: edits here are lost."
        printf 'global:\n  scrape_interval: %s\n  evaluation_interval: %s\n' "$interval" "$interval"
        printf 'rule_files:\n  - "%s"\n' "$SG_ROOT/infra/observability/alerts.yml"
        echo "scrape_configs:"
        for i in 0 1 2; do
            [ -n "${targets[$i]}" ] || continue
            printf '  - job_name: %s\n    static_configs:\n      - targets: ["%s"]\n' "${jobs[$i]}" "${targets[$i]}"
        done
    } > "$dir/prometheus.yml"
    exec setsid prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="$listen"
}
