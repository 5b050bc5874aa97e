# Latency by AMC account, from `amcctl health report -o json`.
#
#   amcctl health report --since 7d -o json | jq -f p95-by-account.jq
#   amcctl health report --since 7d -o json \
#     | jq -f p95-by-account.jq --argjson accounts "$(amcctl account list -o json)"
#
# The report holds each instance's own p50/p95 over the period, not every
# latency, so per account this gives two honest figures:
#   worst_p95_ms   the highest instance p95: no more than 5% of the account's
#                  checks were slower (an upper bound on the account's p95);
#   p95_of_p95_ms  95% of the account's instances have a p95 at or below it.
# For an exact p95 over raw latencies, see the README (check results joined
# with `instance list`). Works with jq 1.6 and later.

# Nearest-rank percentile, as amcctl computes its own.
def nearest_rank(p):
  sort
  | if length == 0 then null
    else .[((p / 100 * length) | ceil | if . < 1 then 1 else . end) - 1]
    end;

(($ARGS.named.accounts // []) | map({(.account_id): .account_name}) | add // {}) as $names
| .instances
| group_by(.account_id)
| map(
    (map(.checks) | add) as $checks
    | (map(.p95_ms // empty)) as $p95s
    | {
        account_id: .[0].account_id,
        account_name: $names[.[0].account_id],
        instances: length,
        checks: $checks,
        uptime_pct: (if $checks > 0
                     then ((map(.healthy) | add) * 10000 / $checks | round) / 100
                     else null end),
        worst_p95_ms: ($p95s | max),
        p95_of_p95_ms: ($p95s | nearest_rank(95))
      }
  )
| sort_by(-(.worst_p95_ms // 0))
