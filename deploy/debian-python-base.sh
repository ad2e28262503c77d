#!/usr/bin/env bash
# A Python 3.11 base image built from Debian packages, for machines that cannot pull
# from Docker Hub (the Dockerfiles default to python:3.11-slim; pass this instead):
#   deploy/debian-python-base.sh modelyard-base:bookworm
#   docker build -f deploy/Dockerfile --build-arg PYTHON_IMAGE=modelyard-base:bookworm .
# Needs root, debootstrap and a Docker engine; reaches only deb.debian.org. About a
# minute. The image holds Debian bookworm's python3 (3.11) with venv and CA
# certificates (Debian's and this machine's extra ones), `python` on PATH, and no apt
# lists, docs, man pages or locales.
set -euo pipefail

tag="${1:?usage: $0 IMAGE_TAG [SUITE] [MIRROR]}"
suite="${2:-bookworm}"
mirror="${3:-http://deb.debian.org/debian}"
for tool in debootstrap docker chroot; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install debootstrap docker.io)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "$0: debootstrap needs root" >&2; exit 2; }

root="$(mktemp -d "${TMPDIR:-/tmp}/modelyard-rootfs.XXXXXX")"
trap 'rm -rf --one-file-system "$root"' EXIT

debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  echo "$0: debootstrap $suite from $mirror failed (full log: $root.log)" >&2
  exit 1
}
rm -f "$root.log"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF
# The machine's own extra CAs (/usr/local/share/ca-certificates) are trusted in the
# image too, so pip inside a build works behind a TLS-inspecting proxy as it does here.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
# No services may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update \
    && apt-get upgrade -y \
    && apt-get install -y --no-install-recommends \
      python3 python3-venv python-is-python3 ca-certificates \
    && apt-get clean' >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  echo "$0: apt-get install python3 in the $suite chroot failed (full log: $root.log)" >&2
  exit 1
}
rm -f "$root.log"
rm -f "$root/usr/sbin/policy-rc.d"
# What a container never reads: package lists and caches, docs, man pages, locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/tmp/* "$root"/root/.cache

tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase $suite + python3 python3-venv ($0)" \
  - "$tag" >/dev/null
echo "$tag"
