# Shared by scripts/bench.d/*. A part run on its own (scripts/bench.d/exim) measures the release
# build that scripts/bench builds.
: "${RELAYDOCTOR:=$PWD/target/release/relaydoctor}"
export RELAYDOCTOR

# median wall time of a command, in seconds.
# median_time N cmd args...   (stdout/stderr of the command are discarded)
median_time() {
  local n=$1; shift
  python3 - "$n" "$@" <<'PY'
import subprocess, sys, time, statistics
n = int(sys.argv[1]); cmd = sys.argv[2:]
ts = []
for _ in range(n):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.4f}")
PY
}
# interleaved_medians N CMD_A... -- CMD_B...: runs A and B alternately N times each (A B B A
# ...), so that load from other processes on the machine hits both alike; prints
# "median_A median_B".
interleaved_medians() {
  local n=$1; shift
  python3 - "$n" "$@" <<'PY'
import subprocess, sys, time, statistics
n = int(sys.argv[1]); args = sys.argv[2:]
sep = args.index("--")
cmds = [args[:sep], args[sep + 1:]]
ts = [[], []]
for i in range(n):
    for k in ((0, 1) if i % 2 == 0 else (1, 0)):
        t = time.perf_counter()
        subprocess.run(cmds[k], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ts[k].append(time.perf_counter() - t)
print(f"{statistics.median(ts[0]):.4f} {statistics.median(ts[1]):.4f}")
PY
}
# ratio A B -> A/B with 2 decimals
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
# peak RSS in MB of a command: peak_rss cmd args...
peak_rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f\n", $1/1024}'; }
