#!/bin/sh
# The island container's entry point (command-compatible with the original seed.sh):
#
#   sh /home/seed.sh <island id> <flag> <server id> "<initial clock YYYY-MM-DD HH:MM:SS>"
#
# 1. writes the initial clock for libfaketime ("@<clock>" in $FAKETIME_TIMESTAMP_FILE);
# 2. registers the island with islandbot (POST $ISLANDBOT_REGISTER_URL with the island's own
#    token, and the version of the server code it boots: see code_version), retrying with backoff for at most $ISLANDBOT_REGISTER_TIMEOUT seconds (default 120);
#    a refusal (4xx) or the deadline ends the script with a non-zero exit;
# 3. execs the server start script from the shared code mount ($ISLAND_SERVER_START, default
#    /home/server/start.sh) with the same four arguments; the island's ports are in its
#    environment as PORT_APP_COMMON_PORT, PORT_REMOTE_MSG_PORT and PORT_SERVER_PORT.
#
# Exit codes: 2 bad arguments or clock, 3 registration refused, 4 registration gave up,
# 5 no server start script. The token is never printed.
set -u

log() { printf '%s seed: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*"; }

if [ "$#" -ne 4 ]; then
    log "usage: seed.sh <island id> <flag> <server id> \"<YYYY-MM-DD HH:MM:SS>\""
    exit 2
fi
island_id=$1 flag=$2 server_id=$3 clock=$4

case $island_id in '' | *[!0-9]*) log "island id '$island_id' is not a number"; exit 2 ;; esac
case $server_id in '' | *[!0-9]*) log "server id '$server_id' is not a number"; exit 2 ;; esac
if ! printf '%s' "$clock" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' \
    || ! date -u -d "$clock" '+%s' >/dev/null 2>&1; then
    log "initial clock '$clock' is not a valid YYYY-MM-DD HH:MM:SS time"
    exit 2
fi

# 1. the clock, written whole (libfaketime may read it at any moment)
clock_file=${FAKETIME_TIMESTAMP_FILE:-/tmp/server-faketime.rc}
mkdir -p "$(dirname "$clock_file")"
printf '@%s\n' "$clock" > "$clock_file.tmp" && mv "$clock_file.tmp" "$clock_file" || {
    log "cannot write the clock file $clock_file"
    exit 2
}
log "island $island_id: initial clock $clock written to $clock_file"

# 2. registration
json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# The server code this island boots, as its registration reports it ("code"): the shared code
# volume's VERSION file when CI writes one (its first line, printable ASCII), else a hash of
# the volume's listing, names and sizes only (not times, owners or block counts, which differ
# from node to node for the same code). Warm pool islands that booted other code than their
# branch's newest are renewed: a VERSION file is the way to say exactly what changed.
code_version() {
    dir=${ISLAND_SERVER_DIR:-/home/server}
    if [ -f "$dir/VERSION" ]; then
        head -n 1 "$dir/VERSION" | tr -cd '!-~' | cut -c1-100
    elif [ -d "$dir" ]; then
        listing=$(ls -lRn "$dir" 2>/dev/null | awk '$1 != "total" { print $5, $NF }')
        printf 'ls-%s' "$(printf '%s' "$listing" | sha256sum | cut -c1-16)"
    fi
}

register() {
    url=${ISLANDBOT_REGISTER_URL:-}
    if [ -z "$url" ]; then
        log "no ISLANDBOT_REGISTER_URL: not registering"
        return 0
    fi
    node=${NODE_NAME:-$(hostname)}
    pod_ip=${POD_IP:-$(hostname -i 2>/dev/null | cut -d' ' -f1)}
    ports=""
    for name in APP_COMMON_PORT REMOTE_MSG_PORT SERVER_PORT; do
        eval "value=\${PORT_$name:-}"
        # shellcheck disable=SC2154  # set by the eval
        if [ -n "$value" ]; then
            key=$(printf '%s' "$name" | tr 'A-Z_' 'a-z-')
            ports="$ports${ports:+,}\"$key\":$value"
        fi
    done
    body="{\"node\":$(json_string "$node"),\"pod_ip\":$(json_string "$pod_ip")"
    body="$body,\"version\":$(json_string "${SERVER_VERSION:-unknown}")"
    [ -n "${SERVER_BUILD:-}" ] && body="$body,\"build\":$(json_string "$SERVER_BUILD")"
    code=$(code_version)
    [ -n "$code" ] && body="$body,\"code\":$(json_string "$code")"
    [ -n "$ports" ] && body="$body,\"ports\":{$ports}"
    body="$body}"

    deadline=$(( $(date +%s) + ${ISLANDBOT_REGISTER_TIMEOUT:-120} ))
    delay=1 attempt=1
    answer=$(mktemp)
    while :; do
        code=$(curl -sS -o "$answer" -w '%{http_code}' --max-time 10 \
            -H "Authorization: Bearer ${ISLANDBOT_REGISTER_TOKEN:-}" \
            -H 'Content-Type: application/json' --data "$body" "$url" 2>"$answer.err")
        case $code in
            200)
                log "island $island_id registered with islandbot (attempt $attempt)"
                rm -f "$answer" "$answer.err"
                return 0 ;;
            4[0-9][0-9])
                if [ "$code" != 408 ] && [ "$code" != 429 ]; then
                    log "registration refused: HTTP $code: $(head -c 300 "$answer")"
                    rm -f "$answer" "$answer.err"
                    exit 3
                fi
                problem="HTTP $code" ;;
            000) problem="no answer: $(head -c 200 "$answer.err")" ;;
            *) problem="HTTP $code" ;;
        esac
        now=$(date +%s)
        if [ $((now + delay)) -gt "$deadline" ]; then
            log "registration gave up after $attempt attempts ($problem)"
            rm -f "$answer" "$answer.err"
            exit 4
        fi
        log "registration attempt $attempt failed ($problem); retrying in ${delay}s"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
        [ "$delay" -gt 15 ] && delay=15
    done
}
register

# 3. the server
start=${ISLAND_SERVER_START:-/home/server/start.sh}
if [ ! -f "$start" ]; then
    log "no server start script at $start (is the shared code volume mounted?)"
    exit 5
fi
log "starting the server: $start $island_id $flag $server_id \"$clock\""
exec sh "$start" "$island_id" "$flag" "$server_id" "$clock"
