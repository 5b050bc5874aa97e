#!/bin/sh
# Bulk AMC health check for cron: silent when every instance is healthy,
# one alert (subject + body) when not, or when the check itself could not run.
#
#   */15 * * * *  AMCCTL_HOME=/var/lib/amcctl /opt/amcctl/health-cron.sh
#
# The alert goes to $ALERT_CMD (a shell command reading the body on stdin,
# with the subject in $ALERT_SUBJECT), e.g.
#   ALERT_CMD='mail -s "$ALERT_SUBJECT" amc-oncall@example.com'
# Without ALERT_CMD it is printed on stdout, which cron mails to MAILTO.
#
# Exit codes of `amcctl health check` and what this does:
#    0  every instance HEALTHY             nothing
#   10  some instance UNHEALTHY or ERROR   alert listing them (from the JSON)
#    7  credentials missing or refused,    alert: fix with `amcctl auth login`
#       or Login with Amazon unreachable
#    6  AMC API or network failure         alert (per-instance network
#       (the check could not start)        failures are ERROR results, so 10)
#    8  store or key unreadable            alert: check AMCCTL_HOME and the key
#  any  other (2 usage, 1 bug, 130 …)      alert with amcctl's message
# The script exits with amcctl's code, so systemd timers and wrappers see it.
#
# Settings (environment): AMCCTL (the binary, default `amcctl`), CHECK_ARGS
# (default `--all`; add --concurrency/--rate to suit the fleet), STATE_DIR
# (last results and the lock, default $AMCCTL_HOME/health-cron or
# ~/.cache/amcctl-health-cron), ALERT_CMD. Needs jq.

set -u

AMCCTL=${AMCCTL:-amcctl}
CHECK_ARGS=${CHECK_ARGS:---all}
if [ -n "${AMCCTL_HOME:-}" ]; then
    STATE_DIR=${STATE_DIR:-$AMCCTL_HOME/health-cron}
else
    STATE_DIR=${STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/amcctl-health-cron}
fi
ALERT_CMD=${ALERT_CMD:-}

mkdir -p "$STATE_DIR" || exit 1
results=$STATE_DIR/last.json
errors=$STATE_DIR/last.err

# One run at a time: a slow run (big fleet, throttling) must not pile up.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/lock"
    if ! flock -n 9; then
        echo "amcctl health-cron: the previous run is still going; skipped" >&2
        exit 0
    fi
fi

alert() { # subject; body on stdin
    if [ -n "$ALERT_CMD" ]; then
        ALERT_SUBJECT=$1 sh -c "$ALERT_CMD"
    else
        printf '%s\n\n' "$1"
        cat
    fi
}

# amcctl's error on stderr is one JSON object with -o json; show its message
# and hint, or the raw text if it is something else (a crash, a shell error).
error_text() {
    jq -r '.error | .message, (.hint // empty)' "$errors" 2>/dev/null || cat "$errors"
}

# shellcheck disable=SC2086 # CHECK_ARGS is a list of flags on purpose
"$AMCCTL" health check $CHECK_ARGS --quiet --no-input -o json \
    >"$results.new" 2>"$errors"
code=$?
mv -f "$results.new" "$results"

case $code in
0)
    ;;
10)
    subject=$(jq -r '.summary | "AMC health: \(.unhealthy) unhealthy, \(.error) error of \(.checked) instances"' "$results")
    jq -r '.results[] | select(.status != "HEALTHY")
           | [.status, .instance_id, .name, .owner, (.error // "")] | @tsv' "$results" |
        alert "$subject"
    ;;
7)
    error_text | alert "AMC health: authentication failed (exit 7); run \`amcctl auth login\` if the credentials were refused"
    ;;
6)
    error_text | alert "AMC health: AMC API or network failure (exit 6)"
    ;;
8)
    error_text | alert "AMC health: store or key problem (exit 8); check AMCCTL_HOME and the key file or AMCCTL_KEY"
    ;;
*)
    error_text | alert "AMC health: the check failed with exit $code"
    ;;
esac
exit "$code"
