#!/usr/bin/env bash
# zerotouch next to nginx serving the same bytes: what a phone's per-device file costs when
# zerotouch answers it, against the cheapest thing that could answer it (a static file).
#
# 1. builds zerotouch (cargo build --release) and prepares a data dir of $DEVICES devices with
#    the boot_storm bench (`--prepare`, which also writes phones.tsv: MAC, User-Agent, path);
# 2. installs Debian's nginx-light and wrk when missing;
# 3. starts zerotouch (log level warn) and fetches every device's per-device file once through
#    it, with that device's User-Agent, into an nginx root at the same paths. (Yealink's common
#    file and Snom's model file are left out: their content depends on the User-Agent's MAC, so
#    one static file per path cannot stand for them.);
# 4. starts nginx on another port: 2 workers, access_log off, the certificate and key (ECDSA
#    P-256) zerotouch generated, TLS 1.2 + 1.3, HTTP/1.1 only, X25519 only, no session tickets
#    and no session cache;
# 5. runs wrk against both, interleaved A B A B …, $RUNS times each: (a) keep-alive, the same
#    Yealink per-device file (about 2 KB, see tenant_extra) with its User-Agent; (b) the same with
#    `Connection: close`, so every request is a fresh TCP connection and a full TLS handshake.
#
# TLS resumption is off on both sides (zerotouch --tls-tickets 0; nginx no tickets, no cache):
# wrk's OpenSSL keeps the session of a closed connection and would resume it, which phones
# after a power cut cannot, and it would make (b) measure resumption, not handshakes. wrk's
# OpenSSL offers X25519 first; the script prints the group each server negotiates.
#
# CPU pinning (applied identically to both servers): the server on CPU $SERVER_CPUS (default
# 0), wrk on CPU $CLIENT_CPUS (default 1). On a 2-CPU machine an unpinned load generator
# competes with the server for the same cores and the scheduler's split decides the figures;
# pinned, each server gets exactly one core and the client the other, so the ratio compares
# the servers. nginx's 2 workers share that core; tokio sizes its pool from the affinity mask
# (one worker). The script prints each server's CPU use per run: a server well under 100% of
# its core means the client, not the server, was the limit.
#
# Usage: benches/compare-nginx.sh
# Environment: RUNS (5), DURATION (10, seconds per run), WARMUP (2, seconds before each run),
# CONNECTIONS (100), DEVICES (1000), SERVER_CPUS (0), CLIENT_CPUS (1), KEEP=1 (keep the work
# directory), CARGO_TARGET_DIR (as cargo).
# Last line of output: keepalive_ratio=R1 handshake_ratio=R2 (zerotouch / nginx, medians).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-100}
DEVICES=${DEVICES:-1000}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

say() { echo "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

work=$(mktemp -d /tmp/compare-nginx.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        say "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# --- build and install ------------------------------------------------------------------------
say "== building (cargo build --release, target dir $TARGET_DIR)"
cargo build --release >&2
zerotouch="$TARGET_DIR/release/zerotouch"

missing=()
have nginx || missing+=(nginx-light)
have wrk || missing+=(wrk)
have curl || missing+=(curl)
have openssl || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    say "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- zerotouch --------------------------------------------------------------------------------
say "== preparing $DEVICES devices"
# Tenants in `mac` mode: nginx checks no credentials either, and an enrolment-mode device would
# be bound (and its config changed) by the fetch below that writes the static copy.
# Tenants in `mac` mode: nginx checks no credentials either, and an enrolment-mode device would
# be bound (and its config changed) by the fetch below that writes the static copy. The tenant
# carries 30 everyday Yealink settings (codecs, features, LLDP…), which makes the measured
# per-device file about 2 KB, the size of a real hosted-PBX config.
tenant_extra='"phone_auth": "mac", "vendor_keys": {"yealink": {"features.dnd.enable": "0", "features.call_waiting.enable": "1", "features.intercom.allow": "1", "features.auto_answer_delay": "3", "features.direct_ip_call_enable": "0", "features.save_call_history": "1", "features.missed_call_popup.enable": "1", "features.caller_name_type_on_dialing": "1", "features.redial_via_local_sip_server.enable": "0", "phone_setting.backlight_time": "60", "phone_setting.inter_digit_time": "4", "phone_setting.ring_type": "Ring1.wav", "phone_setting.called_party_info_display.enable": "1", "local_time.time_format": "1", "local_time.date_format": "2", "voice.tone.country": "France", "account.1.codec.pcma.enable": "1", "account.1.codec.pcmu.enable": "1", "account.1.codec.g722.enable": "1", "account.1.codec.opus.enable": "1", "account.1.dtmf.type": "2", "account.1.srtp_encryption": "2", "account.1.subscribe_mwi": "1", "account.1.subscribe_mwi_to_vm": "1", "sip.rfc2543_hold": "0", "sip.use_out_bound_in_dialog": "1", "static.network.lldp.enable": "1", "static.network.cdp.enable": "1", "static.network.vlan.internet_port_enable": "0", "static.security.trust_certificates": "1"}}'
cargo bench --bench boot_storm -- --prepare "$work/data" --devices "$DEVICES" --tenants 10 \
    --tenant-extra "$tenant_extra" >&2

free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
        p=$((p + 1))
    done
    echo "$p"
}
zt_port=$(free_port 18443)
zt_metrics=$(free_port $((zt_port + 1)))
ng_port=$(free_port $((zt_metrics + 1)))

taskset -c "$SERVER_CPUS" "$zerotouch" serve --data-dir "$work/data" \
    --phones-addr "127.0.0.1:$zt_port" --metrics-addr "127.0.0.1:$zt_metrics" \
    --log-level warn --tls-tickets 0 2>"$work/zerotouch.log" &
zt_pid=$!
pids+=("$zt_pid")
for _ in $(seq 500); do
    curl -fsS "http://127.0.0.1:$zt_metrics/readyz" >/dev/null 2>&1 && break
    kill -0 "$zt_pid" 2>/dev/null || { cat "$work/zerotouch.log" >&2; exit 1; }
    sleep 0.05
done
curl -fsS "http://127.0.0.1:$zt_metrics/readyz" >/dev/null
cert="$work/data/tls/cert.pem"
key="$work/data/tls/key.pem"
openssl x509 -in "$cert" -noout -text | grep -q "id-ecPublicKey" ||
    { say "expected an ECDSA certificate in $cert"; exit 1; }

say "== fetching each device's file once through zerotouch"
www="$work/www"
mkdir -p "$www"
# One curl process, one keep-alive connection, a block per file (options reset at `next`).
tail -n +2 "$work/data/phones.tsv" | while IFS=$'\t' read -r _ _ _ _ ua path; do
    printf 'url = "https://127.0.0.1:%s%s"\nuser-agent = "%s"\noutput = "%s%s"\ncacert = "%s"\nfail\nsilent\nshow-error\nnext\n' \
        "$zt_port" "$path" "$ua" "$www" "$path" "$cert"
done | sed '$d' >"$work/curl.cfg"
curl -K "$work/curl.cfg" >&2
files=$(find "$www" -type f | wc -l)
untenanted=$(grep -L -e "tenant: t" -r "$www" | wc -l)
if [ "$files" != "$DEVICES" ] || [ "$untenanted" != 0 ]; then
    say "expected $DEVICES files naming their tenant, got $files ($untenanted without a tenant)"
    exit 1
fi
chmod -R a+rX "$work"

# The measured file: the first Yealink device's .cfg, with its User-Agent.
IFS=$'\t' read -r _ _ _ _ ua path < <(awk -F'\t' '$2 == "yealink"' "$work/data/phones.tsv" | head -n 1)
size=$(wc -c <"$www$path")
say "   $files files; measured file $path ($size bytes), User-Agent: $ua"

# --- nginx ------------------------------------------------------------------------------------
mkdir -p "$work/nginx-tmp"
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 65536;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    fastcgi_temp_path $work/nginx-tmp/fastcgi;
    uwsgi_temp_path $work/nginx-tmp/uwsgi;
    scgi_temp_path $work/nginx-tmp/scgi;
    types { text/plain cfg; text/xml xml htm; }
    charset utf-8;
    charset_types text/plain text/xml;
    etag off;
    server {
        # No http2 here: HTTP/1.1 only, like zerotouch's ALPN.
        listen 127.0.0.1:$ng_port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve X25519;
        ssl_session_tickets off;
        ssl_session_cache off;
        root $www;
        add_header Cache-Control no-store;
    }
}
EOF
taskset -c "$SERVER_CPUS" "$nginx_bin" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" &
ng_pid=$!
pids+=("$ng_pid")
for _ in $(seq 200); do
    curl -fsS --cacert "$cert" -o /dev/null "https://127.0.0.1:$ng_port$path" 2>/dev/null && break
    kill -0 "$ng_pid" 2>/dev/null || { cat "$work/nginx-error.log" >&2; exit 1; }
    sleep 0.05
done
ng_workers=$(pgrep -P "$ng_pid" | tr '\n' ' ')

# Same bytes from both, and what each negotiates.
cmp -s <(curl -fsS --cacert "$cert" -A "$ua" "https://127.0.0.1:$zt_port$path") \
    <(curl -fsS --cacert "$cert" -A "$ua" "https://127.0.0.1:$ng_port$path") ||
    { say "zerotouch and nginx answer different bytes for $path"; exit 1; }
for p in "$zt_port" "$ng_port"; do
    name=zerotouch
    [ "$p" = "$ng_port" ] && name=nginx
    tls=$(openssl s_client -connect "127.0.0.1:$p" -CAfile "$cert" </dev/null 2>/dev/null |
        grep -E "^(New,|Server Temp Key|Peer Temp Key|Verify return code)" | tr '\n' ' ')
    say "   $name TLS: $tls"
done

# --- runs -------------------------------------------------------------------------------------
# CPU seconds (user + system) used so far by the given processes.
cpu_of() {
    local total=0 pid fields
    for pid in "$@"; do
        fields=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + fields))
    done
    echo "$total"
}
ticks=$(getconf CLK_TCK)

# run NAME PORT MODE -> prints requests/s on stdout, details on stderr
run() {
    local name=$1 port=$2 mode=$3 out before after rps extra=() server_pids
    if [ "$name" = zerotouch ]; then server_pids=("$zt_pid"); else read -ra server_pids <<<"$ng_pid $ng_workers"; fi
    [ "$mode" = handshake ] && extra=(-H "Connection: close")
    taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "User-Agent: $ua" "${extra[@]}" \
        "https://127.0.0.1:$port$path" >/dev/null
    before=$(cpu_of "${server_pids[@]}")
    out=$(taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "User-Agent: $ua" "${extra[@]}" \
        "https://127.0.0.1:$port$path")
    after=$(cpu_of "${server_pids[@]}")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    local bad errors cpu
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
    errors=$(grep -E "Socket errors:" <<<"$out" || true)
    cpu=$(awk -v a="$after" -v b="$before" -v t="$ticks" -v d="$DURATION" 'BEGIN { printf "%.0f", (a - b) / t / d * 100 }')
    say "$(printf '%-9s %-9s %10s req/s   server CPU %3s%%%s%s' "$mode" "$name" "$rps" "$cpu" \
        "${bad:+   NON-2xx: $bad}" "${errors:+   $errors}")"
    if [ -n "$bad" ]; then
        say "   $name answered $bad requests with a non-2xx status: the figure is not valid"
        touch "$work/failed"
    fi
    echo "$rps"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A results
say "== $RUNS runs of ${DURATION}s per server and mode, $CONNECTIONS connections, wrk on CPU $CLIENT_CPUS, servers on CPU $SERVER_CPUS"
for mode in keepalive handshake; do
    for i in $(seq "$RUNS"); do
        say "-- $mode run $i/$RUNS"
        for name in zerotouch nginx; do
            port=$zt_port
            [ "$name" = nginx ] && port=$ng_port
            rps=$(run "$name" "$port" "$mode")
            echo "$mode $name run $i: $rps req/s"
            results[$mode.$name]+="$rps "
        done
    done
done

ratio() {
    local zt ng
    zt=$(tr ' ' '\n' <<<"${results[$1.zerotouch]}" | grep . | median)
    ng=$(tr ' ' '\n' <<<"${results[$1.nginx]}" | grep . | median)
    echo "$1 median: zerotouch $zt req/s, nginx $ng req/s" >&2
    awk -v a="$zt" -v b="$ng" 'BEGIN { printf "%.2f", a / b }'
}
keepalive_ratio=$(ratio keepalive)
handshake_ratio=$(ratio handshake)
[ ! -e "$work/failed" ] || say "WARNING: some runs had non-2xx answers (see above)"
echo "keepalive_ratio=$keepalive_ratio handshake_ratio=$handshake_ratio"
