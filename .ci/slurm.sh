#!/usr/bin/env bash
# CI for sweeps on a real Slurm (issue 18), after the cargo tests (the release binary is built):
#  1. installs Debian's slurmctld, slurmd, slurm-client and munge (idempotent);
#  2. starts munged and a single-node cluster on localhost as root (the node's real CPUs and memory
#     from `slurmd -C`), with a private slurm.conf (SLURM_CONF) and state under a temp directory;
#  3. runs the 12-point quick sweep configs/sweeps/icl-gd-lr.toml locally on 2 workers and through
#     the slurm executor (one task cancelled while queued, then `sweep retry` resubmits it alone),
#     merges both, and checks that the merged metrics are identical point by point;
#  4. exports the Slurm-merged store as CSV, JSON lines and Parquet and reads them back with pandas
#     (venv under /tmp), against the store read directly with sqlite3;
#  5. stops the daemons it started (also on failure).
set -euo pipefail
# No `producer | grep -q`: grep -q exits at its first match, the producer then writes to a closed
# pipe, and pipefail fails the step (CI once failed this way). Grep files, or `grep >/dev/null`.
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/release/mesalab
T0=$(date +%s)
say() { echo "[slurm-ci +$(( $(date +%s) - T0 ))s] $*"; }

[ -x "$BIN" ] || cargo build --release --workspace --locked

if ! command -v slurmctld >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own service starts fail without systemd; the daemons are started below.
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

WORK=$(mktemp -d /tmp/mesalab-slurm-ci.XXXXXX)
chmod 755 "$WORK"  # munged (user munge) must reach its files inside
STARTED_PIDS=()
cleanup() {
  set +e
  for pidfile in "$WORK/slurmctld.pid" "$WORK/slurmd.pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 1
  rm -rf "$WORK"
}
trap cleanup EXIT

# munge: a key of our own and a daemon of our own on a private socket.
mkdir -p "$WORK/munge"
chown munge: "$WORK/munge" 2>/dev/null || true
dd if=/dev/urandom bs=1 count=1024 of="$WORK/munge/munge.key" status=none
chown munge: "$WORK/munge/munge.key"
chmod 400 "$WORK/munge/munge.key"
MUNGE_SOCKET=$WORK/munge/munge.socket
runuser -u munge -- /usr/sbin/munged --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" --seed-file="$WORK/munge/munged.seed"
for _ in $(seq 50); do [ -f "$WORK/munge/munged.pid" ] && break; sleep 0.1; done
STARTED_PIDS+=("$(cat "$WORK/munge/munged.pid")")

HOST=$(hostname -s)
NODE=$(slurmd -C | sed -n 1p | sed -e "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/" -e 's/ UpTime=.*//')
export SLURM_CONF=$WORK/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=mesalab-ci
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmdSpoolDir=$WORK/slurmd
StateSaveLocation=$WORK/state
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MinJobAge=600
$NODE State=UNKNOWN
PartitionName=ci Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$WORK/slurmd" "$WORK/state"
say "node: $NODE"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$HOST"
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -E '^(idle|mixed|allocated)' >/dev/null && break
  sleep 0.2
done
sinfo
sinfo -h -o %T | grep -E '^(idle|mixed|allocated)' >/dev/null || { cat "$WORK/slurmctld.log" "$WORK/slurmd.log"; exit 1; }
say "cluster up"

SWEEP=configs/sweeps/icl-gd-lr.toml
LOCAL=$WORK/local
SL=$WORK/slurm
"$BIN" sweep plan "$SWEEP" --dir "$LOCAL"

t=$(date +%s)
"$BIN" sweep run "$SWEEP" --dir "$LOCAL" --workers 2
LOCAL_S=$(( $(date +%s) - t ))
"$BIN" merge "$LOCAL"
say "local sweep: ${LOCAL_S}s"

# Submit without waiting, cancel the last task while it is still queued (2 CPUs run 2 tasks at a
# time), let the rest finish, then retry resubmits that point alone.
t=$(date +%s)
"$BIN" sweep run "$SWEEP" --dir "$SL" --executor slurm 2>&1 | tee "$WORK/submit.txt"
JOB=$(grep -oE 'Slurm job [0-9]+' "$WORK/submit.txt" | grep -oE '[0-9]+')
scancel "${JOB}_11"
while squeue -h -j "$JOB" 2>/dev/null | grep . >/dev/null; do sleep 1; done
"$BIN" sweep status "$SL" | tee "$WORK/status1.txt"
grep -qE '11 finished, 1 failed|1 failed, 11 finished' "$WORK/status1.txt"
"$BIN" sweep retry "$SL" --executor slurm --wait 2>&1 | tee "$WORK/retry.txt"
grep -q 'submitted job' "$WORK/retry.txt"
grep -q '(1 task(s)' "$WORK/retry.txt"
SLURM_S=$(( $(date +%s) - t ))
"$BIN" sweep status "$SL" | tee "$WORK/status2.txt"
grep -q '^12 finished$' "$WORK/status2.txt"
"$BIN" merge "$SL"
"$BIN" merge "$SL" >"$WORK/merge2.txt"
grep -q '0 run(s) copied, 12 already there' "$WORK/merge2.txt"
say "slurm sweep (with one cancelled task retried): ${SLURM_S}s"

# The same metrics, point by point, from both merged stores (stdlib sqlite3).
python3 - "$LOCAL/merged.sqlite" "$SL/merged.sqlite" <<'EOF'
import re, sqlite3, sys
def metrics(path):
    c = sqlite3.connect(path)
    out = {}
    for run_id, run_dir in c.execute("SELECT id, run_dir FROM runs WHERE status = 'finished'"):
        key = re.search(r"points/([0-9a-f]{16})/run$", run_dir).group(1)
        out[key] = sorted(c.execute("SELECT seed, step, name, value FROM metrics WHERE run_id = ?", (run_id,)).fetchall(),
                          key=lambda r: (r[0] is None, r[0] or 0, r[1], r[2]))
    return out
a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
assert len(a) == 12 and a.keys() == b.keys(), (len(a), sorted(a), sorted(b))
diff = [k for k in a if a[k] != b[k]]
assert not diff, f"points whose metrics differ between local and Slurm: {diff}"
print(f"identical metrics for {len(a)} points ({sum(len(v) for v in a.values())} samples) local vs Slurm")
EOF

# Export round trip through pandas.
VENV=/tmp/mesalab-export-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import pandas, pyarrow' 2>/dev/null; then
  say "creating $VENV (pandas, pyarrow)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check pandas pyarrow
fi
for f in csv jsonl parquet; do
  "$BIN" --store "$SL/merged.sqlite" export --format "$f" --out "$WORK/export"
done
"$VENV/bin/python" .ci/export_check.py "$SL/merged.sqlite" "$WORK/export"
say "done: local ${LOCAL_S}s, slurm ${SLURM_S}s"
