#!/usr/bin/env bash
# Runs the README's two commands, ./sparq.sh test and ./sparq.sh demo, on a really fresh system: a
# minimal Debian 12 (bookworm) root made with debootstrap, into which a clean clone of HEAD (only
# committed files) is copied; both commands run inside it with chroot, as root, with network.
#
#   scripts/fresh-machine-check.sh [--refresh] [--tree] [--run COMMAND]
#     --refresh      rebuild the cached Debian root (else it is reused between runs)
#     --tree         copy the working tree (tracked and untracked, not ignored files) instead of
#                    HEAD, to try a set-up change before committing it
#     --run COMMAND  run COMMAND (bash, in the copied tree) instead of the two commands
#
# Cache: $SPARQ_FRESH_ROOT, else ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/fresh-root, holding
#   base/       the pristine root as debootstrap made it (--variant=minbase: no python3, git,
#               sudo, ca-certificates or compiler), with bookworm, -updates and -security sources
#   run/        this run's copy of base/ (replaced by every run, kept afterwards to look into)
#   apt/        downloaded .deb files, shared between runs (only downloads, nothing installed)
#   logs/       each command's output, by date
# Mirror: $SPARQ_DEBIAN_MIRROR, else http://deb.debian.org/debian.
# Needs root (debootstrap, mount, chroot); installs debootstrap with apt-get when it is missing.
# The root gets the host's network settings: resolv.conf, hosts, the CA certificates the host
# added under /usr/local/share/ca-certificates, and the http(s)_proxy variables.
# /proc, /sys, /dev, /dev/pts (and a fresh /dev/shm) are mounted into the root and unmounted on
# every exit path. Prints each command's result and wall time; exits nonzero when one fails.
set -euo pipefail

refresh=0 tree=0 run_command=""
while (($#)); do
  case "$1" in
    --refresh) refresh=1 ;;
    --tree) tree=1 ;;
    --run)
      [ $# -ge 2 ] || { echo "fresh-machine-check: --run needs a command" >&2; exit 2; }
      run_command="$2"
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "fresh-machine-check: unknown argument '$1' (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=SPARQ_FRESH_ROOT,SPARQ_DEBIAN_MIRROR,XDG_CACHE_HOME \
      "$repo/scripts/fresh-machine-check.sh" "$@"
  fi
  echo "fresh-machine-check: needs root (debootstrap, mount, chroot) and sudo is not here" >&2
  exit 1
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "fresh-machine-check: an x86-64 host is needed (sparq is x86-64 only)" >&2
  exit 1
fi

cache="${SPARQ_FRESH_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/sparq/fresh-root}"
mirror="${SPARQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base="$cache/base" root="$cache/run"
mkdir -p "$cache/apt" "$cache/logs"

# Seconds since an $EPOCHREALTIME.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }
# The mount points under a folder, deepest first.
mounts_under() {
  awk -v dir="$1" 'index($2, dir "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
mounted=()
unmount_all() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m="${mounted[i]}"
    umount "$m" 2>/dev/null || umount -l "$m" || echo "fresh-machine-check: cannot unmount $m" >&2
  done
  mounted=()
  # Whatever an interrupted earlier run left mounted.
  for m in $(mounts_under "$root"); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
trap unmount_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Removes a root that nothing is mounted in (never follows a mount into the host).
remove_root() {
  if [ -n "$(mounts_under "$1")" ]; then
    echo "fresh-machine-check: something is still mounted under $1; not removing it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$1"
}

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "fresh-machine-check: installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    debootstrap debian-archive-keyring
fi

# The pristine root: made once (or on --refresh), completed only when debootstrap succeeded.
if ((refresh)) || [ ! -f "$base/etc/sparq-fresh-root" ]; then
  unmount_all
  remove_root "$base.tmp"
  remove_root "$base"
  echo "fresh-machine-check: debootstrap bookworm (minbase) from $mirror into $base"
  start=$EPOCHREALTIME
  debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" >"$cache/logs/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/logs/debootstrap.log" >&2
    echo "fresh-machine-check: debootstrap failed (log: $cache/logs/debootstrap.log)" >&2
    exit 1
  }
  security="${mirror%/debian}/debian-security"
  [ "$security" = "$mirror/debian-security" ] && security=http://deb.debian.org/debian-security
  cat >"$base.tmp/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  date -u +%Y-%m-%dT%H:%M:%SZ >"$base.tmp/etc/sparq-fresh-root"
  mv "$base.tmp" "$base"
  echo "fresh-machine-check: root made in $(elapsed "$start") s"
fi
echo "fresh-machine-check: Debian root of $(cat "$base/etc/sparq-fresh-root") ($base)"

# This run's root: a copy of the pristine one, so every run starts from a fresh system.
unmount_all
remove_root "$root"
cp -a "$base" "$root"
# Network as the host has it: its resolver, its hosts file, and the CA certificates it added
# itself (e.g. those of an intercepting proxy), which the root's ca-certificates package takes
# in when install-deps.sh installs it; proxy variables are passed through below.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
[ -f /etc/hosts ] && cp -L /etc/hosts "$root/etc/hosts"
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -rL /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi

# The sources: a clean clone of HEAD (or the working tree with --tree) in /root/sparq.
dest="$root/root/sparq"
commit=$(git -C "$repo" rev-parse --short HEAD)
if ((tree)); then
  mkdir -p "$dest"
  git -C "$repo" ls-files -z -co --exclude-standard |
    tar -C "$repo" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$dest" -xf -
  what="the working tree of $commit"
else
  git clone --quiet --no-hardlinks "$repo" "$dest"
  what="commit $commit"
  if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
    echo "fresh-machine-check: note: uncommitted changes are not part of the check (--tree takes them)"
  fi
fi
echo "fresh-machine-check: checking $what"

for fs in proc sys dev dev/pts; do
  mount --bind "/$fs" "$root/$fs"
  mounted+=("$root/$fs")
done
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
mounted+=("$root/dev/shm")
# Downloaded packages are kept for the next run (a cache of downloads, not of what is installed).
mount --bind "$cache/apt" "$root/var/cache/apt/archives"
mounted+=("$root/var/cache/apt/archives")

proxy_env=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!v:-}" ] && proxy_env+=("$v=${!v}")
done

# in_root NAME COMMAND: runs COMMAND with bash in /root/sparq inside the root, with a clean
# environment; its output goes to the terminal and to logs/; prints the result and wall time.
results=() failed=0
in_root() {
  local name="$1" command="$2" log start rc seconds
  log="$cache/logs/$(date -u +%Y%m%dT%H%M%SZ)-${name//[^a-z]/}.log"
  echo "=== $name"
  start=$EPOCHREALTIME
  set +e
  chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${proxy_env[@]}" \
    /bin/bash -c "cd /root/sparq && $command" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  seconds=$(elapsed "$start")
  if ((rc == 0)); then
    results+=("$(printf '%-18s ok        %6s s' "$name" "$seconds")")
  else
    results+=("$(printf '%-18s FAILED %-3s %5s s  (log: %s)' "$name" "$rc" "$seconds" "$log")")
    failed=1
  fi
}

if [ -n "$run_command" ]; then
  echo "fresh-machine-check: running: $run_command"
  in_root "--run" "$run_command"
else
  in_root "./sparq.sh test" "./sparq.sh test"
  in_root "./sparq.sh demo" "./sparq.sh demo"
fi

echo "=== fresh-machine-check: $(date -u +%Y-%m-%d), $what, Debian 12 root of" \
  "$(cat "$base/etc/sparq-fresh-root"), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf '%s\n' "${results[@]}"
exit "$failed"
