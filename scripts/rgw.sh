#!/usr/bin/env bash
# Throwaway one-node Ceph cluster (RAM-backed memstore OSD by default, auth none) with a
# RADOS Gateway (real S3 server) on 127.0.0.1, for tests and benchmarks.
#
#   scripts/rgw.sh start DIR    bootstrap in scratch dir DIR, start mon + osd + radosgw,
#                               create S3 user test / testtest, print `endpoint=http://127.0.0.1:PORT`
#   scripts/rgw.sh stop DIR     stop every daemon listed in DIR/run/*.pid (bounded wait)
#   scripts/rgw.sh status DIR   exit 0 and print the endpoint if the cluster in DIR serves S3
#
# Only the endpoint line goes to stdout; everything else goes to stderr.
#
# Environment:
#   RGW_PORT            S3 port (default 7480)
#   RGW_MON_PORT        monitor port (default 3300)
#   RGW_MEMSTORE_BYTES  memstore capacity (default 4 GiB, minimum 2 GiB); data lives in RAM
#   RGW_OBJECTSTORE     memstore (default: everything in RAM, ~20 KB of OSD RSS per small S3
#                       object, all lost on stop) or bluestore (file-backed, for big buckets:
#                       the block device is a sparse file DIR/osd/ceph-0/block; 1,000,000
#                       objects of 0-4 KiB took 13.9 GB of it, the OSD's RAM stays near
#                       RGW_OSD_MEMORY_TARGET). With bluestore, `start` on a DIR whose cluster
#                       was stopped restarts it with its data (RGW_FRESH=1: wipe it and bootstrap
#                       a new one); ports then come from DIR/ceph.conf. Any other `start`
#                       (memstore, or RGW_FRESH=1) wipes what DIR holds.
#   RGW_BLUESTORE_BYTES size of the sparse block file (default 40 GiB, minimum 4 GiB); only the
#                       space really written is taken on disk, but it is never given back (discard
#                       is off, and a file cannot be discarded): bluestore allocates forward
#                       through the device and reuses freed space only after wrapping around, so
#                       with steady writes the file soon holds its full size on the host disk.
#                       Size it for the disk, not for the data.
#   RGW_OSD_MEMORY_TARGET  bluestore: osd memory target, cache autotuned under it (default 1.5 GiB)
#   RGW_INDEX_SHARDS    bucket index shards of new buckets (rgw override bucket index max shards;
#                       default: RGW's own for memstore, 16 for bluestore, i.e. 62,500 entries a
#                       shard at 1,000,000 objects); with bluestore dynamic resharding is off,
#                       so listings and PUTs are never paused by a reshard
#   RGW_GC_MIN_WAIT     seconds before RGW's garbage collector frees a deleted or overwritten object's
#                       data (rgw gc obj min wait; RGW's default is 2 hours). Big benchmarks set a
#                       short wait so a 4 GiB round does not need tens of GiB of block file.
#   RGW_FRESH=1         bluestore: never reuse the data of a stopped cluster in DIR
#   RGW_START_TIMEOUT   seconds allowed for each bootstrap phase (default 60)
#   RGW_STOP_TIMEOUT    seconds to wait for daemons to exit before SIGKILL (default 15)
#   RGW_WATCH_PID       if set, a small watchdog stops the cluster once that process is gone
#                       (so a killed test runner does not leave daemons behind)
#   RGW_WATCH_RMDIR=1   ... and the watchdog also removes DIR afterwards
#
# Needs: ceph-mon ceph-osd radosgw ceph-common (Debian: apt-get install --no-install-recommends
# radosgw ceph-mon ceph-osd ceph-common). Uses only bash builtins for HTTP/port probes (no curl).
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
RGW_PORT=${RGW_PORT:-7480}
RGW_MON_PORT=${RGW_MON_PORT:-3300}
RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-4294967296}
RGW_OBJECTSTORE=${RGW_OBJECTSTORE:-memstore}
RGW_BLUESTORE_BYTES=${RGW_BLUESTORE_BYTES:-42949672960}
RGW_OSD_MEMORY_TARGET=${RGW_OSD_MEMORY_TARGET:-1610612736}
if [[ $RGW_OBJECTSTORE == bluestore ]]; then RGW_INDEX_SHARDS=${RGW_INDEX_SHARDS:-16}; else RGW_INDEX_SHARDS=${RGW_INDEX_SHARDS:-}; fi
RGW_FRESH=${RGW_FRESH:-0}
RGW_GC_MIN_WAIT=${RGW_GC_MIN_WAIT:-}
[[ -z $RGW_GC_MIN_WAIT || $RGW_GC_MIN_WAIT =~ ^[0-9]+$ ]] || { echo "rgw.sh: RGW_GC_MIN_WAIT must be a number of seconds, not '$RGW_GC_MIN_WAIT'" >&2; exit 2; }
RGW_START_TIMEOUT=${RGW_START_TIMEOUT:-60}
RGW_STOP_TIMEOUT=${RGW_STOP_TIMEOUT:-15}
ACCESS_KEY=test
SECRET_KEY=testtest

log() { printf 'rgw.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }

now_ms() { local s=${EPOCHREALTIME/./}; echo $((s / 1000)); }

# --- small probes (bash /dev/tcp, each bounded by `timeout`) -----------------------------------

# exit 0 if something accepts TCP connections on 127.0.0.1:$1
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# print the HTTP status code of GET http://127.0.0.1:$1/ (empty on failure)
http_status() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$0" >&3
    IFS=" " read -r _ code _ <&3 && printf "%s" "$code"' "$1" 2>/dev/null || true
}

# pid alive and really one of our ceph daemons (guards against pid reuse)
is_our_daemon() {
  local pid=$1 comm
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  case $comm in ceph-mon | ceph-osd | radosgw) ;; *) return 1 ;; esac
  # its command line must mention this cluster's config file
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$R/ceph.conf"
}

running_pids() {
  local f pid
  for f in "$R"/run/*.pid; do
    [[ -e $f ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if is_our_daemon "$pid"; then echo "$pid"; fi
  done
}

# --- failure reporting ---------------------------------------------------------------------------

CUR_LOGS=()
STARTED_BY_US=0
on_start_exit() {
  local rc=$?
  trap - EXIT
  ((STARTED_BY_US)) || exit "$rc"
  ((rc)) || rc=1
  log "start FAILED (exit $rc)"
  local f
  for f in "${CUR_LOGS[@]}"; do
    if [[ -s $f ]]; then
      log "---- tail of $f ----"
      tail -n 30 "$f" >&2 || true
    fi
  done
  if ((STARTED_BY_US)); then
    log "stopping the partially started cluster"
    do_stop >/dev/null || true
  fi
  exit "$rc"
}

# run CMD... bounded by `timeout`, output appended to $CMD_LOG; fd 9 (our lock) is not inherited
CMD_LOG=/dev/null
run() {
  timeout "$RGW_START_TIMEOUT" "$@" >>"$CMD_LOG" 2>&1 9>&-
}

# wait_until DESCRIPTION SECONDS CMD...  (polls CMD until it succeeds)
wait_until() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# --- ceph helpers ----------------------------------------------------------------------------------

ceph_cli() { timeout 20 ceph -c "$R/ceph.conf" --connect-timeout 10 "$@" 9>&-; }

mon_ready() { ceph_cli mon stat >>"$CMD_LOG" 2>&1; }

osd_up() { ceph_cli osd stat 2>>"$CMD_LOG" | grep -qE '\b1 up\b'; }

rgw_ready() { [[ $(http_status "$RGW_PORT") == 200 ]]; }

pidfile_alive() { [[ -s $1 ]] && is_our_daemon "$(cat "$1")"; }

write_conf() {
  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$R/ceph.conf" <<EOF
# generated by scripts/rgw.sh -- throwaway test cluster, do not use for anything real
[global]
fsid = $fsid
mon initial members = a
mon host = v2:127.0.0.1:$RGW_MON_PORT
public addr = 127.0.0.1
ms bind ipv6 = false
# with auth=none radosgw loops on 'get_initial_auth_request returned -13' unless these are crc
ms mon client mode = crc
ms client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
mon allow pool delete = true
# faster map updates: pool creation (radosgw's first start) waits on paxos proposals
paxos propose interval = 0.05
paxos min wait = 0.01
mon osd crush smoke test = false
run dir = $R/run
keyring = $R/keyring
mon data = $R/mon/\$cluster-\$id
osd data = $R/osd/\$cluster-\$id
$(objectstore_conf)
osd max object name len = 460
osd max object namespace len = 64
# CLI tools (ceph, radosgw-admin): no admin socket, log to a file
admin socket =
log file = $R/log/cli.log

[mon]
admin socket = $R/run/\$name.asok
log file = $R/log/\$name.log
pid file = $R/run/\$name.pid

[osd]
admin socket = $R/run/\$name.asok
log file = $R/log/\$name.log
pid file = $R/run/\$name.pid

[client.rgw.local]
admin socket = $R/run/\$name.asok
log file = $R/log/\$name.log
pid file = $R/run/\$name.pid
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $R/rgw
$(rgw_extra_conf)
EOF
}

objectstore_conf() {
  if [[ $RGW_OBJECTSTORE == bluestore ]]; then
    cat <<EOF
osd objectstore = bluestore
# the block device is a sparse file in the OSD's data dir (DIR/osd/ceph-0/block), no separate
# DB/WAL devices: RocksDB lives on it too (BlueFS)
bluestore block create = true
bluestore block size = $RGW_BLUESTORE_BYTES
bluestore block db create = false
bluestore block wal create = false
bluestore min alloc size hdd = 4096
bluestore min alloc size ssd = 4096
bluestore fsck on mount = false
bdev enable discard = false
osd memory target = $RGW_OSD_MEMORY_TARGET
bluestore cache autotune = true
EOF
  else
    cat <<EOF
osd objectstore = memstore
memstore device bytes = $RGW_MEMSTORE_BYTES
EOF
  fi
}

rgw_extra_conf() {
  if [[ -n $RGW_INDEX_SHARDS ]]; then echo "rgw override bucket index max shards = $RGW_INDEX_SHARDS"; fi
  if [[ -n $RGW_GC_MIN_WAIT ]]; then
    echo "rgw gc obj min wait = $RGW_GC_MIN_WAIT"
    echo "rgw gc processor period = $(( RGW_GC_MIN_WAIT > 10 ? RGW_GC_MIN_WAIT : 10 ))"
  fi
  if [[ $RGW_OBJECTSTORE == bluestore ]]; then
    echo "rgw dynamic resharding = false"
    # big runs: radosgw logs ~420 bytes per request at level 1 (0.9 GB for 2 million requests);
    # keep levels >= 1 in memory only (still dumped on a crash), errors still go to the file
    echo "debug rgw = 0/5"
  fi
}

# starts the monitor (already created) and waits until it answers; $1 = start time (ms)
run_mon() {
  run ceph-mon -c "$R/ceph.conf" -i a
  wait_until "ceph-mon pid file" "$RGW_START_TIMEOUT" pidfile_alive "$R/run/mon.a.pid"
  wait_until "ceph-mon to answer" "$RGW_START_TIMEOUT" mon_ready
  log "mon up in $(($(now_ms) - $1)) ms"
}

# starts OSD $1 (already created) and radosgw, each waited for
run_osd_and_rgw() {
  local id=$1 t
  t=$(now_ms)
  CUR_LOGS=("$CMD_LOG" "$R/log/osd.$id.log")
  run ceph-osd -c "$R/ceph.conf" -i "$id"
  wait_until "osd.$id to be up" "$RGW_START_TIMEOUT" osd_up
  log "osd.$id up in $(($(now_ms) - t)) ms"
  t=$(now_ms)
  CUR_LOGS=("$CMD_LOG" "$R/log/client.rgw.local.log" "$R/log/osd.$id.log")
  run radosgw -c "$R/ceph.conf" -n client.rgw.local
  wait_until "radosgw to answer HTTP 200 on 127.0.0.1:$RGW_PORT" "$RGW_START_TIMEOUT" rgw_ready
  log "radosgw up in $(($(now_ms) - t)) ms"
}

# --- start -------------------------------------------------------------------------------------------

do_start() {
  local t0 t
  t0=$(now_ms)

  local bin
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$bin" >/dev/null ||
      die "$bin not found (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common)"
  done
  [[ $RGW_PORT =~ ^[0-9]+$ && $RGW_MON_PORT =~ ^[0-9]+$ ]] || die "RGW_PORT/RGW_MON_PORT must be numbers"
  [[ $RGW_PORT != "$RGW_MON_PORT" ]] || die "RGW_PORT and RGW_MON_PORT must differ"
  [[ $RGW_MEMSTORE_BYTES =~ ^[0-9]+$ ]] && ((RGW_MEMSTORE_BYTES >= 2147483648)) ||
    die "RGW_MEMSTORE_BYTES must be >= 2147483648 (2 GiB), got '$RGW_MEMSTORE_BYTES'"
  case $RGW_OBJECTSTORE in memstore | bluestore) ;; *) die "RGW_OBJECTSTORE must be memstore or bluestore, got '$RGW_OBJECTSTORE'" ;; esac
  [[ $RGW_BLUESTORE_BYTES =~ ^[0-9]+$ ]] && ((RGW_BLUESTORE_BYTES >= 4294967296)) ||
    die "RGW_BLUESTORE_BYTES must be >= 4294967296 (4 GiB), got '$RGW_BLUESTORE_BYTES'"
  [[ $RGW_OSD_MEMORY_TARGET =~ ^[0-9]+$ ]] || die "RGW_OSD_MEMORY_TARGET must be a number of bytes"
  [[ -z $RGW_INDEX_SHARDS || $RGW_INDEX_SHARDS =~ ^[0-9]+$ ]] || die "RGW_INDEX_SHARDS must be a number"
  # unix socket paths are limited to 107 bytes
  ((${#R} <= 70)) || die "DIR path too long for ceph admin sockets (${#R} > 70 chars): $R"

  # already running here?
  local pids
  pids=$(running_pids)
  if [[ -n $pids ]]; then
    local ep port
    ep=$(cat "$R/endpoint" 2>/dev/null || true)
    port=${ep##*:}
    if [[ -n $port && $(http_status "$port") == 200 ]] &&
      pidfile_alive "$R/run/mon.a.pid" && pidfile_alive "$R/run/client.rgw.local.pid"; then
      if [[ $port != "$RGW_PORT" ]]; then
        log "note: cluster in $R is already running on port $port (RGW_PORT=$RGW_PORT ignored)"
      else
        log "cluster in $R is already running"
      fi
      echo "endpoint=$ep"
      return 0
    fi
    die "a cluster in $R is partially running (pids: $(echo $pids)); run '$0 stop $R' first"
  fi

  # bluestore keeps its data on disk: a stopped cluster is restarted as it is
  if [[ $RGW_OBJECTSTORE == bluestore && $RGW_FRESH != 1 && -e $R/bootstrapped ]] &&
    grep -qx 'osd objectstore = bluestore' "$R/ceph.conf" 2>/dev/null; then
    do_restart "$t0"
    return
  fi

  for p in "$RGW_MON_PORT" "$RGW_PORT"; do
    if port_open "$p"; then
      die "port 127.0.0.1:$p is already in use (set RGW_PORT / RGW_MON_PORT to free ports)"
    fi
  done

  # fresh bootstrap: remove leftovers of an earlier (stopped) cluster, only our own entries
  rm -rf "$R/mon" "$R/osd" "$R/run" "$R/log" "$R/rgw" "$R/monmap" "$R/keyring" "$R/ceph.conf" "$R/endpoint" "$R/bootstrapped"
  mkdir -p "$R/mon" "$R/osd" "$R/run" "$R/log" "$R/rgw"
  write_conf
  CMD_LOG=$R/log/bootstrap.log
  CUR_LOGS=("$CMD_LOG")
  trap on_start_exit EXIT
  STARTED_BY_US=1

  # monitor
  t=$(now_ms)
  run ceph-authtool --create-keyring "$R/keyring" --gen-key -n mon. --cap mon 'allow *'
  run monmaptool --create --addv a "[v2:127.0.0.1:$RGW_MON_PORT]" \
    --fsid "$(sed -n 's/^fsid = //p' "$R/ceph.conf")" "$R/monmap"
  CUR_LOGS=("$CMD_LOG" "$R/log/mon.a.log")
  run ceph-mon -c "$R/ceph.conf" --mkfs -i a --monmap "$R/monmap" --keyring "$R/keyring"
  run_mon "$t"

  # OSD (memstore: data lives in RAM; bluestore: --mkfs creates the sparse block file)
  local id
  id=$(ceph_cli osd create 2>>"$CMD_LOG")
  [[ $id =~ ^[0-9]+$ ]] || { log "'ceph osd create' printed '$id'"; false; }
  mkdir -p "$R/osd/ceph-$id"
  CUR_LOGS=("$CMD_LOG" "$R/log/osd.$id.log")
  run ceph-osd -c "$R/ceph.conf" -i "$id" --mkfs
  # radosgw's first start creates the rgw pools
  run_osd_and_rgw "$id"

  t=$(now_ms)
  CUR_LOGS=("$CMD_LOG" "$R/log/cli.log")
  run radosgw-admin -c "$R/ceph.conf" user create --uid=test --display-name=test \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY"
  log "user test created in $(($(now_ms) - t)) ms"

  STARTED_BY_US=0
  trap - EXIT
  echo "http://127.0.0.1:$RGW_PORT" >"$R/endpoint"
  echo "$RGW_OBJECTSTORE" >"$R/bootstrapped"
  if [[ -n ${RGW_WATCH_PID:-} ]]; then start_watchdog "$RGW_WATCH_PID"; fi
  local store="memstore $RGW_MEMSTORE_BYTES bytes"
  [[ $RGW_OBJECTSTORE == memstore ]] || store="bluestore, block file of $RGW_BLUESTORE_BYTES bytes"
  log "cluster ready in $(($(now_ms) - t0)) ms (dir $R, $store)"
  echo "endpoint=http://127.0.0.1:$RGW_PORT"
}

# restart the daemons of a stopped bluestore cluster in $R, keeping its data (ports from its ceph.conf)
do_restart() {
  local t0=$1 t id
  RGW_MON_PORT=$(sed -n 's/^mon host = v2:127\.0\.0\.1:\([0-9]*\)$/\1/p' "$R/ceph.conf")
  RGW_PORT=$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$R/ceph.conf")
  [[ $RGW_PORT =~ ^[0-9]+$ && $RGW_MON_PORT =~ ^[0-9]+$ ]] || die "cannot read the ports from $R/ceph.conf"
  for p in "$RGW_MON_PORT" "$RGW_PORT"; do
    port_open "$p" && die "port 127.0.0.1:$p (from $R/ceph.conf) is already in use; RGW_FRESH=1 bootstraps a new cluster"
  done
  log "restarting the stopped bluestore cluster in $R with its data (RGW_FRESH=1 to wipe it)"
  rm -f "$R"/run/*.pid "$R/endpoint"
  CMD_LOG=$R/log/bootstrap.log
  CUR_LOGS=("$CMD_LOG" "$R/log/mon.a.log")
  trap on_start_exit EXIT
  STARTED_BY_US=1
  run_mon "$(now_ms)"
  id=$(cd "$R/osd" && ls -d ceph-* | head -n 1)
  id=${id#ceph-}
  [[ $id =~ ^[0-9]+$ ]] || { log "no OSD data dir in $R/osd"; false; }
  run_osd_and_rgw "$id"
  STARTED_BY_US=0
  trap - EXIT
  echo "http://127.0.0.1:$RGW_PORT" >"$R/endpoint"
  if [[ -n ${RGW_WATCH_PID:-} ]]; then start_watchdog "$RGW_WATCH_PID"; fi
  log "cluster restarted in $(($(now_ms) - t0)) ms (dir $R, bluestore)"
  echo "endpoint=http://127.0.0.1:$RGW_PORT"
}

start_watchdog() {
  local watched=$1
  [[ $watched =~ ^[0-9]+$ ]] || die "RGW_WATCH_PID must be a pid"
  # the watchdog's argv carries a marker so `stop` can recognise it before killing it
  setsid bash -c '
    watched=$1 self=$2 dir=$3 rmdir=$4
    alive() { # running and not a zombie
      [ -e "/proc/$watched" ] || return 1
      case $(cut -d" " -f3 "/proc/$watched/stat" 2>/dev/null) in Z | X | "") return 1 ;; esac
    }
    while alive && [ -e "$dir/watchdog.pid" ]; do sleep 1; done
    if [ -e "$dir/watchdog.pid" ]; then
      rm -f "$dir/watchdog.pid"
      bash "$self" stop "$dir" >/dev/null 2>&1
      if [ "$rmdir" = 1 ]; then rm -rf "$dir"; fi
    fi' rgw-sh-watchdog "$watched" "$SELF" "$R" "${RGW_WATCH_RMDIR:-0}" </dev/null >/dev/null 2>&1 9>&- &
  echo $! >"$R/watchdog.pid"
}

# --- stop ----------------------------------------------------------------------------------------------

kill_wait() { # SIGNAL SECONDS PID...
  local sig=$1 secs=$2
  shift 2
  local pid left
  for pid in "$@"; do kill "-$sig" "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + secs))
  while :; do
    left=()
    for pid in "$@"; do
      if kill -0 "$pid" 2>/dev/null && [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
        left+=("$pid")
      fi
    done
    ((${#left[@]})) || return 0
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  echo "${left[@]}"
  return 1
}

do_stop() {
  # the watchdog first (if this stop is not the watchdog's own)
  local wpid
  if [[ -s $R/watchdog.pid ]]; then
    wpid=$(cat "$R/watchdog.pid")
    rm -f "$R/watchdog.pid"
    if [[ $wpid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$wpid/cmdline" 2>/dev/null | grep -q rgw-sh-watchdog; then
      kill "$wpid" 2>/dev/null || true
    fi
  fi

  local rgw=() osd=() mon=() f pid
  for f in "$R"/run/*.pid; do
    [[ -e $f ]] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if is_our_daemon "$pid"; then
      case $(cat "/proc/$pid/comm") in
        radosgw) rgw+=("$pid") ;;
        ceph-osd) osd+=("$pid") ;;
        *) mon+=("$pid") ;;
      esac
    fi
  done
  if ((${#rgw[@]} + ${#osd[@]} + ${#mon[@]} == 0)); then
    log "no running daemons in $R"
    rm -f "$R"/run/*.pid
    return 0
  fi
  local stuck
  # radosgw first (clients), then the OSD, then the monitor.
  # A memstore OSD gets SIGKILL: on SIGTERM memstore dumps its whole RAM contents to DIR/osd
  # (slow, and the data is thrown away anyway). A bluestore OSD gets SIGTERM (a clean unmount,
  # so a later `start` resumes it), SIGKILL if it does not exit in time (bluestore survives it).
  if ((${#rgw[@]})); then
    stuck=$(kill_wait TERM "$RGW_STOP_TIMEOUT" "${rgw[@]}") || { log "radosgw did not exit on SIGTERM, killing: $stuck"; kill_wait KILL 5 $stuck >/dev/null || true; }
  fi
  if ((${#osd[@]})); then
    if grep -qx 'osd objectstore = bluestore' "$R/ceph.conf" 2>/dev/null; then
      stuck=$(kill_wait TERM "$RGW_STOP_TIMEOUT" "${osd[@]}") || { log "ceph-osd did not exit on SIGTERM, killing: $stuck"; kill_wait KILL 5 $stuck >/dev/null || true; }
    else
      stuck=$(kill_wait KILL "$RGW_STOP_TIMEOUT" "${osd[@]}") || log "ceph-osd still alive after SIGKILL: $stuck"
    fi
  fi
  if ((${#mon[@]})); then
    stuck=$(kill_wait TERM "$RGW_STOP_TIMEOUT" "${mon[@]}") || { log "ceph-mon did not exit on SIGTERM, killing: $stuck"; kill_wait KILL 5 $stuck >/dev/null || true; }
  fi
  local all=("${rgw[@]}" "${osd[@]}" "${mon[@]}") alive=()
  for pid in "${all[@]}"; do
    if kill -0 "$pid" 2>/dev/null && [[ $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) != Z ]]; then alive+=("$pid"); fi
  done
  if ((${#alive[@]})); then
    log "error: daemons still running: ${alive[*]}"
    return 1
  fi
  rm -f "$R"/run/*.pid "$R/endpoint"
  log "stopped ${#all[@]} daemon(s) in $R"
}

do_status() {
  local ep port
  ep=$(cat "$R/endpoint" 2>/dev/null || true)
  port=${ep##*:}
  if [[ -n $port && -n $(running_pids) && $(http_status "$port") == 200 ]]; then
    echo "endpoint=$ep"
  else
    log "no working cluster in $R"
    return 1
  fi
}

# --- main ------------------------------------------------------------------------------------------------

(($# == 2)) || usage
cmd=$1
mkdir -p "$2"
R=$(realpath "$2")

# serialise start/stop/status on the same DIR
exec 9>"$R/.lock"
timeout_lock=$((RGW_START_TIMEOUT * 5))
flock -w "$timeout_lock" 9 || die "could not lock $R/.lock within ${timeout_lock}s"

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) usage ;;
esac
