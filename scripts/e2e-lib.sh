# shellcheck shell=bash
# scripts/e2e-lib.sh — sourced (bash) by the scripts that test the whole system from outside,
# docker/test-docker and .ci/run: fresh Debian bookworm roots made with debootstrap from the
# mirror this machine's apt sources use, the mounts a chroot into one needs and their safe
# removal; pass/fail bookkeeping, a free port and HTTP requests with curl and jq. Sourcing it
# only defines functions (and passed=0 failed=0 unless set).
#
#   apt_uri SUITE                 URI of the first host apt source (deb822 or one-line) that
#                                 carries SUITE, or empty
#   write_apt_sources DIR         DIR/etc/apt/sources.list.d/debian.sources: bookworm,
#                                 -updates and -security from the host's mirrors (no proxy)
#   copy_host_trust DIR           this machine's own certificate authorities
#                                 (/usr/local/share/ca-certificates, e.g. an egress proxy's)
#                                 into DIR's trust store, as a machine of this network has them
#   debootstrap_bookworm DIR LOG [OPTION...]
#                                 debootstrap bookworm into DIR from the host's mirror (output
#                                 to LOG, its tail on stderr on failure), then write_apt_sources
#   mount_chroot DIR              /proc, /sys (read-only), /dev, /dev/pts, /dev/shm (tmpfs)
#                                 and the host's resolv.conf, for a chroot into DIR
#   umount_under DIR              lazily unmounts whatever is mounted below DIR, deepest first
#   remove_root DIR               umount_under DIR, then rm -rf DIR without leaving its file
#                                 system; refuses (returns 1) while anything is still mounted
#                                 below it, so a bind mount is never deleted through
#   free_port                     a TCP port below the ephemeral range no socket uses
#   CHECK_NAME=name; ok/bad/check/say
#                                 "name: ok   what" lines counted in $passed and $failed;
#                                 check WHAT COMMAND... runs COMMAND and counts it
#   now_us, ms_since T_US, secs MS  a clock, elapsed milliseconds, "1.234 s"
#   api METHOD PATH [CONTENT-TYPE BODY-FILE]
#                                 one HTTP request to $base_url (with $api_key as a bearer
#                                 token when set) by curl; sets $code (000: no answer), $body
#   jget FILTER JSON              jq -r FILTER, or "?" when JSON is not JSON

passed=${passed:-0} failed=${failed:-0}
CHECK_NAME=${CHECK_NAME:-check}
now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }
ms_since() { echo $(( ($(now_us) - $1) / 1000 )); }
secs() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }
say() { echo "$CHECK_NAME: $*"; }
ok() { passed=$((passed + 1)); say "ok   $*"; }
bad() { failed=$((failed + 1)); say "FAIL $*" >&2; }
check() { # check DESCRIPTION COMMAND...: a non-fatal check
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

jget() { jq -r "$1" <<<"$2" 2>/dev/null || echo "?"; }
api() {
  local method=$1 path=$2 args=() out
  [[ $# -ge 4 ]] && args=(-H "Content-Type: $3" --data-binary "@$4")
  [[ -n ${api_key:-} ]] && args+=(-H "Authorization: Bearer $api_key")
  out=$(mktemp)
  code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 30 -X "$method" "${args[@]}" \
           "$base_url$path") || code=000
  body=$(cat "$out")
  rm -f "$out"
}

apt_uri() {
  local suite=$1 f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    uri=$(awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; deb = 0; hit = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) deb = 1
          if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
          if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == s) hit = 1 }
        }
        if (deb && hit && uri != "") { print uri; exit } }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    uri=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($i ~ /^\[/) while ($i !~ /\]$/) i++; if ($i ~ /^\[/ || $i ~ /\]$/) i++
                                           if ($(i + 1) == s) { print $i; exit } }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
}

write_apt_sources() {
  local dir=$1 mirror security
  mirror=$(apt_uri bookworm); mirror=${mirror:-http://deb.debian.org/debian}
  security=$(apt_uri bookworm-security); security=${security:-http://deb.debian.org/debian-security}
  rm -f "$dir/etc/apt/sources.list"
  mkdir -p "$dir/etc/apt/sources.list.d"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

copy_host_trust() {
  local dir=$1
  compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null || return 0
  mkdir -p "$dir/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
  chroot "$dir" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || true
}

debootstrap_bookworm() {
  local dir=$1 log=$2 mirror
  shift 2
  mirror=$(apt_uri bookworm); mirror=${mirror:-http://deb.debian.org/debian}
  say "debootstrap $* bookworm from $mirror"
  if ! debootstrap "$@" bookworm "$dir" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    umount_under "$dir"
    return 1
  fi
  umount_under "$dir"
  write_apt_sources "$dir"
}

mount_chroot() {
  local dir=$1
  mount -t proc proc "$dir/proc" &&
  mount -t sysfs -o ro sysfs "$dir/sys" &&
  mount --bind /dev "$dir/dev" &&
  mount --bind /dev/pts "$dir/dev/pts" &&
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm" &&
  rm -f "$dir/etc/resolv.conf" &&
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf" &&
  chmod 1777 "$dir/tmp"
}

umount_under() {
  { grep -F " $1/" /proc/mounts || true; } | awk '{ print $2 }' | sort -r | xargs -r umount -l
}

remove_root() {
  local dir=$1
  [[ -d $dir ]] || return 0
  umount_under "$dir"
  if grep -qF " $dir/" /proc/mounts; then
    echo "remove_root: still mounted below $dir; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

free_port() {
  local p lo
  read -r lo _ < /proc/sys/net/ipv4/ip_local_port_range
  (( lo > 20500 )) || lo=32768
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % (lo - 20000)))
    ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  return 1
}
