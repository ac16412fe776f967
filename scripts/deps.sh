#!/usr/bin/env bash
# Installs the Debian packages given as "command:package" pairs when the
# command is missing (apt-get, as root or through sudo). Sourced by run.sh
# and test.sh.
need() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  apt_install "${missing[@]}"
}

# Installs the Debian packages given by name that are not installed (for
# packages without a command to look for, such as fonts).
need_pkg() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  apt_install "${missing[@]}"
}

apt_install() {
  [ $# -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: $*" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
