#!/usr/bin/env bash
# Builds the Debian package (issue 19): dpkg-deb, no other tool.
#
#   scripts/package-deb.sh [BINARY [OUT_DIR [LEVEL]]]
#     BINARY   default target/release/hotline (cargo build --release)
#     OUT_DIR  default target/debian
#     LEVEL    xz compression level, default 6 (the test suite packs its
#              debug build with 0)
#
# The package holds /usr/bin/hotline, the sample configuration under
# /etc/hotline (conffiles; its state paths moved to /var/lib/hotline), the
# systemd unit, Kamailio's configuration and the Prometheus rules and Grafana
# dashboard under /usr/share/hotline. The packaged configuration trusts no
# SIP source (`[sip] trusted = []`: the court's PBX/SBC goes there). postinst
# makes the `hotline` system user and /var/lib/hotline (0750, the user's),
# keeps /etc/hotline readable by the group only, gives the local Redis a
# password (/usr/lib/hotline/redis-auth: /etc/hotline/redis.env for the
# unit, /etc/redis/hotline.conf included by redis.conf), and enables the
# unit; start it once the roster and hotline.toml are the court's:
# `systemctl start hotline`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/hotline}
out=${2:-target/debian}
level=${3:-6}
[ -x "$bin" ] || { echo "package-deb: no binary at $bin (cargo build --release)" >&2; exit 2; }
version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$bin" "$root/usr/bin/hotline"
install -d -m 0750 "$root/etc/hotline"
cp -r config/roster.toml config/partners.toml config/cases.csv config/holidays config/prompts "$root/etc/hotline/"
# The sample configuration with the state under /var/lib/hotline, no SIP
# source trusted (the sample's loopback would trust every local process),
# and Redis's URL with its password from the unit's environment.
sed -e 's|^journal_dir = .*|journal_dir = "/var/lib/hotline/journal"|' \
    -e 's|^dir = "\.\./recordings"|dir = "/var/lib/hotline/recordings"|' \
    -e 's|^key_file = .*|key_file = "/var/lib/hotline/caller.key"|' \
    -e 's|^trusted = \[.*|# Packaged: nobody. Put the court'"'"'s PBX or the carrier'"'"'s SBC here (a\
# Kamailio in front goes in proxies), e.g. ["10.1.2.3", "10.1.2.0/28"].\
trusted = []|' \
    -e 's|^python = "\.\./target/transcribe/bin/python"|python = "/opt/hotline/transcribe/bin/python"|' \
    -e 's|^worker = "\.\./scripts/transcribe/worker.py"|worker = "/usr/share/hotline/scripts/transcribe/worker.py"|' \
    -e 's|^model_dir = "\.\./target/transcribe/whisper-base"|model_dir = "/opt/hotline/transcribe/whisper-base"|' \
    -e 's|^url = "redis://127.0.0.1:6379/"|# Packaged: HOTLINE_REDIS_URL in /etc/hotline/redis.env (with the password\
# postinst made) wins over this; change the URL there.\
url = "redis://127.0.0.1:6379/"|' \
    config/hotline.toml >"$root/etc/hotline/hotline.toml"
grep -q '^trusted = \[\]$' "$root/etc/hotline/hotline.toml" \
    || { echo "package-deb: the packaged configuration still trusts a SIP source" >&2; exit 1; }
find "$root/etc/hotline" -type d -exec chmod 0750 {} +
find "$root/etc/hotline" -type f -exec chmod 0640 {} +
sed -e 's|/usr/local/bin/hotline|/usr/bin/hotline|g' deploy/hotline.service \
    | install -D -m 0644 /dev/stdin "$root/lib/systemd/system/hotline.service"
install -D -m 0644 deploy/kamailio/kamailio.cfg "$root/usr/share/hotline/kamailio/kamailio.cfg"
install -D -m 0644 deploy/kamailio/dispatcher.list "$root/usr/share/hotline/kamailio/dispatcher.list"
install -D -m 0644 deploy/prometheus/hotline.rules.yml "$root/usr/share/hotline/prometheus/hotline.rules.yml"
install -D -m 0644 deploy/grafana/hotline-dashboard.json "$root/usr/share/hotline/grafana/hotline-dashboard.json"
install -D -m 0644 docs/deploy.md "$root/usr/share/doc/hotline/deploy.md"
install -D -m 0755 deploy/redis/redis-auth "$root/usr/lib/hotline/redis-auth"
# The transcriber's worker and its installer (run by hand, offline from a
# wheelhouse: docs/deploy.md); the virtualenv goes to /opt/hotline/transcribe.
install -D -m 0755 scripts/install-transcribe.sh "$root/usr/share/hotline/scripts/install-transcribe.sh"
install -D -m 0644 scripts/deps.sh "$root/usr/share/hotline/scripts/deps.sh"
for f in worker.py requirements.txt whisper-base.sha256; do
  install -D -m 0644 "scripts/transcribe/$f" "$root/usr/share/hotline/scripts/transcribe/$f"
done
grep -q '^model_dir = "/opt/hotline/transcribe/whisper-base"$' "$root/etc/hotline/hotline.toml" \
    || { echo "package-deb: the packaged configuration misses the transcriber's paths" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: hotline
Version: $version
Architecture: $arch
Maintainer: Shibei District People's Court, enforcement command center <hotline@court.invalid>
Depends: libc6, adduser
Recommends: redis-server, python3-venv
Suggests: kamailio, redis-sentinel, prometheus
Section: comm
Priority: optional
Description: 24-hour report line of the enforcement command center
 A SIP gateway that answers the duty line, runs the DTMF intake, records
 every call as tamper-evident evidence, opens lead tickets in Redis and
 pages whoever holds the duty until someone acknowledges.
EOF
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd hotline >/dev/null; then
        adduser --system --group --home /var/lib/hotline --no-create-home \
            --shell /usr/sbin/nologin hotline
    fi
    install -d -o hotline -g hotline -m 0750 /var/lib/hotline
    chown -R root:hotline /etc/hotline
    # The local Redis gets a password (made once, kept on upgrades); the
    # unit reads the gateway's URL with it from /etc/hotline/redis.env.
    before=$(cat /etc/redis/hotline.conf 2>/dev/null || true)
    /usr/lib/hotline/redis-auth /etc/hotline/redis.env /etc/redis/hotline.conf
    restart=
    [ "$before" = "$(cat /etc/redis/hotline.conf 2>/dev/null || true)" ] || restart=yes
    if [ -f /etc/redis/redis.conf ] && [ -f /etc/redis/hotline.conf ] \
        && ! grep -qx 'include /etc/redis/hotline.conf' /etc/redis/redis.conf; then
        printf '\n# hotline: the password its gateway uses\ninclude /etc/redis/hotline.conf\n' \
            >>/etc/redis/redis.conf
        restart=yes
    fi
    if [ ! -f /etc/redis/hotline.conf ]; then
        echo "hotline: no redis-server here yet; once it is installed, run"
        echo "  dpkg-reconfigure hotline"
    elif [ -n "$restart" ] && [ -d /run/systemd/system ]; then
        systemctl try-restart redis-server.service || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        systemctl enable hotline.service || true
    fi
    echo "hotline: edit /etc/hotline/hotline.toml, roster.toml, partners.toml and cases.csv, check with"
    echo "  hotline check-config --config /etc/hotline/hotline.toml"
    echo "then: systemctl start hotline"
fi
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# An upgrade or removal drains first (new calls 503, calls in progress end).
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop hotline.service || true
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
# Recordings, journal and the caller key in /var/lib/hotline are evidence:
# never removed by the package, not even on purge.
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/hotline_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz -z"$level" --build "$root" "$deb" >/dev/null
echo "$deb"
