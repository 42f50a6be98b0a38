# Shared by the image's start-up scripts.
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RUN=/run/slipway
CONFIG=/etc/slipway/slipway.yaml
mkdir -p "$RUN" /etc/slipway

# note TEXT: a line of the boot's story, shown on the screen and kept.
note() { echo "$*" >>"$RUN/notes"; echo "slipway-image: $*" >/dev/kmsg 2>/dev/null; }

# problem TEXT: something the operator must fix, shown on the screen.
problem() { echo "$*" >>"$RUN/problems"; echo "slipway-image: PROBLEM: $*" >/dev/kmsg 2>/dev/null; }

# slipway: the binary in use (a newer one from the stick, or the image's own).
slipway() { "$(cat "$RUN/binary" 2>/dev/null || echo /usr/bin/slipway)" "$@"; }

# partition DISK N: the device name of partition N of DISK (sda3, nvme0n1p3).
partition() { case $1 in *[0-9]) echo "${1}p$2" ;; *) echo "$1$2" ;; esac; }
