#!/usr/bin/env bash
# Acceptance run of issue 3: `transfers dev` in a fresh data dir, accounts opened and funded on
# every shard, SUBMITS concurrent `transfers submit`s (every 10th refused for insufficient funds,
# every 10th compensated because its target is closed), then `transfers audit` must pass and
# `transfers list` must show every transfer in a final state. Prints the timing of each phase.
#
#   scripts/acceptance.sh                 # 200 submits, all at once, 3 shards
#   SUBMITS=50 CONCURRENCY=10 scripts/acceptance.sh
#   KEEP=1 scripts/acceptance.sh          # keep the data dir and logs for a look afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
SUBMITS=${SUBMITS:-200}
CONCURRENCY=${CONCURRENCY:-$SUBMITS}
SHARDS=${SHARDS:-3}
ACCOUNTS_PER_SHARD=${ACCOUNTS_PER_SHARD:-4}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/transfers-acceptance.XXXXXX")
DATA="$WORK/stack"
STACK=(--stack "$DATA")
TRANSFERS=("$BIN/python" -m transfers.cli)

now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
say() { printf '[acceptance] %s\n' "$*"; }

free_port() { "$BIN/python" -c 'from transfers.devtools.embedded_pg import free_port; print(free_port())'; }

stop_stack() {
    if [[ -n "${DEV_PID:-}" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
        kill -TERM "$DEV_PID"
        wait "$DEV_PID" || say "transfers dev exited with code $?"
    fi
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap stop_stack EXIT

# 1. the stack -------------------------------------------------------------------------------
started=$(now)
"${TRANSFERS[@]}" dev --data-dir "$DATA" --shards "$SHARDS" --json \
    --temporal-port "$(free_port)" --ui-port "$(free_port)" >"$WORK/dev.log" 2>&1 &
DEV_PID=$!
until grep -q '"event": "ready"' "$WORK/dev.log" 2>/dev/null; do
    if ! kill -0 "$DEV_PID" 2>/dev/null; then cat "$WORK/dev.log"; exit 1; fi
    sleep 0.2
done
say "stack ready after $(since "$started")s"

# 2. accounts on every shard, and the plan of transfers -------------------------------------
"$BIN/python" - "$SHARDS" "$ACCOUNTS_PER_SHARD" "$SUBMITS" "$WORK" <<'PLAN'
import random
import sys
from pathlib import Path

from shards.router import shard_index

shards, per_shard, submits = (int(argument) for argument in sys.argv[1:4])
work = Path(sys.argv[4])


def ids_on(shard: int, prefix: str, count: int) -> list[str]:
    candidates = (f"{prefix}-{n}" for n in range(10_000))
    return [c for c in candidates if shard_index(c, shards) == shard][:count]


open_accounts = {s: ids_on(s, "acc", per_shard) for s in range(shards)}
closed = {s: ids_on(s, "closed", 1)[0] for s in range(shards)}
(work / "open.txt").write_text("".join(f"{a}\n" for ids in open_accounts.values() for a in ids))
(work / "closed.txt").write_text("".join(f"{a}\n" for a in closed.values()))

everyone = [a for ids in open_accounts.values() for a in ids]
chooser = random.Random(3)
lines = []
for number in range(1, submits + 1):
    source = chooser.choice(everyone)
    source_shard = shard_index(source, shards)
    others = [account for account in everyone if account != source]
    if number % 10 == 0:  # more than any account holds
        kind, target, amount = "refused", chooser.choice(others), "5000.00"
    elif number % 10 == 5 and shards > 1:  # a closed target on another shard: debit, then refund
        kind, amount = "compensated", "1.00"
        target = chooser.choice([a for s, a in closed.items() if s != source_shard])
    else:
        kind, target = "completed", chooser.choice(others)
        cents = chooser.randint(1, 999)
        amount = f"{cents // 100}.{cents % 100:02d}"
    lines.append(f"acc-t-{number} {source} {target} {amount} {kind}\n")
(work / "plan.txt").write_text("".join(lines))
PLAN

started=$(now)
xargs -P 4 -I{} "${TRANSFERS[@]}" accounts open {} --currency USD "${STACK[@]}" --json \
    <"$WORK/open.txt" >/dev/null
xargs -P 4 -I{} "${TRANSFERS[@]}" accounts open {} --currency USD "${STACK[@]}" --json \
    <"$WORK/closed.txt" >/dev/null
xargs -P 4 -I{} "${TRANSFERS[@]}" accounts deposit {} 1000.00 --id fund-{} "${STACK[@]}" --json \
    <"$WORK/open.txt" >/dev/null
xargs -P 4 -I{} "${TRANSFERS[@]}" accounts close {} "${STACK[@]}" --json \
    <"$WORK/closed.txt" >/dev/null
say "$(wc -l <"$WORK/open.txt") funded and $(wc -l <"$WORK/closed.txt") closed accounts" \
    "on $SHARDS shards in $(since "$started")s"

# 3. the concurrent submits ------------------------------------------------------------------
mkdir -p "$WORK/submits"
submit() {  # transfer_id source target amount kind: exit code and kind go to <id>.rc
    local result="$WORK/submits/$1" code=0
    "${TRANSFERS[@]}" submit --id "$1" --from "$2" --to "$3" --amount "$4" --currency USD \
        "${STACK[@]}" --json >"$result.json" 2>"$result.err" || code=$?
    echo "$code $5" >"$result.rc"
}
started=$(now)
(   # a subshell: its jobs are the submits alone, not `transfers dev`
    while read -r transfer_id source target amount kind; do
        submit "$transfer_id" "$source" "$target" "$amount" "$kind" &
        while (($(jobs -rp | wc -l) >= CONCURRENCY)); do wait -n || true; done
    done <"$WORK/plan.txt"
    wait
)
submit_s=$(since "$started")
say "$SUBMITS submits (concurrency $CONCURRENCY) done in ${submit_s}s"

# 4. the verdict -----------------------------------------------------------------------------
started=$(now)
set +e
"${TRANSFERS[@]}" audit "${STACK[@]}" >"$WORK/audit.txt"
audit_code=$?
set -e
cat "$WORK/audit.txt"
"${TRANSFERS[@]}" list --limit 10000 "${STACK[@]}" --json >"$WORK/list.json"
"$BIN/python" - "$WORK" "$SUBMITS" "$audit_code" <<'VERDICT'
import json
import sys
from collections import Counter
from pathlib import Path

work, submits, audit_code = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
expected = {
    "completed": (0, "COMPLETED"),
    "refused": (1, "FAILED"),
    "compensated": (1, "COMPENSATED"),
}
problems = []
outcomes = Counter()
for rc_file in sorted((work / "submits").glob("*.rc")):
    transfer_id = rc_file.stem
    code, kind = rc_file.read_text().split()
    try:
        status = json.loads((work / "submits" / f"{transfer_id}.json").read_text())["status"]
    except (ValueError, KeyError):
        status = "no JSON: " + (work / "submits" / f"{transfer_id}.err").read_text().strip()[-200:]
    outcomes[status] += 1
    if (int(code), status) != expected[kind]:
        problems.append(f"{transfer_id} ({kind}): exit {code}, {status}")
rows = json.loads((work / "list.json").read_text())["transfers"]
listed = {row["transfer_id"]: row["status"] for row in rows}
ours = {t: s for t, s in listed.items() if t.startswith("acc-t-")}
final = {"COMPLETED", "FAILED", "COMPENSATED", "VOIDED", "EXPIRED"}
not_final = {t: s for t, s in ours.items() if s not in final}
print(f"[acceptance] submit outcomes: {dict(outcomes)}")
print(f"[acceptance] transfers list: {len(ours)} of {submits} listed, {len(not_final)} not final")
if len(ours) != submits or not_final:
    problems.append(f"list: {len(ours)} listed, not final: {not_final}")
if audit_code != 0:
    problems.append(f"audit exit code {audit_code}")
for problem in problems[:20]:
    print(f"[acceptance] PROBLEM {problem}")
sys.exit(1 if problems else 0)
VERDICT
say "audit and list checked in $(since "$started")s: PASSED"
