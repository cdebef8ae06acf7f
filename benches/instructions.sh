#!/usr/bin/env bash
# Instructions per call of the phone path's two costly steps, counted by valgrind's callgrind:
# repeatable where wall-clock time on a shared virtual machine is not (runs of the same criterion
# bench differ by 30 % here). Compares two builds of benches/hot_path.rs, e.g. main against a
# worktree of an earlier commit:
#
#   cargo bench --bench hot_path --no-run            # in each tree
#   benches/instructions.sh OLD_TREE NEW_TREE
#
# For each case it runs the bench binary under callgrind twice (criterion's --profile-time 2
# and 5 s), collecting only inside the measured function, and divides the difference in
# instructions by the difference in calls (so start-up work, like the template self-check,
# cancels out). Needs valgrind (Debian's package) and python3.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: benches/instructions.sh OLD_TREE NEW_TREE" >&2
    exit 2
fi

bench_binary() {
    ls -t "$1"/target/release/deps/hot_path-* 2>/dev/null | grep -v '\.d$' | head -1
}

# instructions and calls of FUNCTION inside a callgrind output file
count() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
names, calls, callee = {}, {}, None
for line in text.split("\n"):
    m = re.match(r"(fn|cfn)=\((\d+)\)(?: (.*))?", line)
    if m:
        kind, idx, name = m.groups()
        if name:
            names[idx] = name
        if kind == "cfn":
            callee = idx
        continue
    m = re.match(r"calls=(\d+)", line)
    if m and callee:
        calls[callee] = calls.get(callee, 0) + int(m.group(1))
total = int(re.search(r"summary: (\d+)", text).group(1))
n = max([c for i, c in calls.items() if names.get(i) == sys.argv[2]] or [0])
print(total, n)
PY
}

# per-call instructions of COLLECTED counted by calls of MARKER, for bench FILTER in TREE
per_call() {
    local tree=$1 filter=$2 collected=$3 marker=$4 out
    out=$(mktemp)
    local t1 n1 t2 n2
    (cd "$tree" && valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$collected" \
        "$(bench_binary "$tree")" --bench "$filter" --profile-time 2 >/dev/null 2>&1)
    read -r t1 n1 < <(count "$out" "$marker")
    (cd "$tree" && valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="$collected" \
        "$(bench_binary "$tree")" --bench "$filter" --profile-time 5 >/dev/null 2>&1)
    read -r t2 n2 < <(count "$out" "$marker")
    rm -f "$out"
    echo $(((t2 - t1) / (n2 - n1)))
}

printf '%-44s %10s %10s %6s\n' case old new ratio
for case in yealink_device snom_device gigaset_device unknown_device_404 yealink_boot_404 enrolled_basic; do
    old=$(per_call "$1" "handle_cached/$case\$" '*Provisioner*handle*' zerotouch::provisioning::Provisioner::handle)
    new=$(per_call "$2" "handle_cached/$case\$" '*Provisioner*handle*' zerotouch::provisioning::Provisioner::handle)
    printf '%-44s %10d %10d %6s\n' "handle_cached/$case" "$old" "$new" "$(python3 -c "print(f'{$new/$old:.2f}')")"
done
