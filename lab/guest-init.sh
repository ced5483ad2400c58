#!/bin/sh
# Stage 2 of the lab VM: PID 1 on the host's root (read-only 9p under a tmpfs overlay).
# /tmp stays the (overlaid) host /tmp: the checkout may live there.
# Mounts what a Debian userland expects, loads the lab's kernel modules, then runs the
# command agent on the virtio-serial ports; when the agent exits the VM powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^frrdmvpn.$1=//p"; }
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
rundir=$(arg run)
mkdir -p /lib/modules "$rundir"
mount --bind "$(arg modules)" /lib/modules
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 labrun "$rundir"
for m in $(arg modprobe | tr ',' ' '); do modprobe "$m" || echo "guest-init: modprobe $m failed"; done
hostname frrdmvpn-lab
# A built root (FRRDMVPN_LAB_RELEASE other than bookworm) has an empty machine ID, which
# Debian 13's systemd-nspawn refuses ("Failed to retrieve machine ID"): give it one, as a
# first boot would. (The host root's is set: nothing changes there.)
[ -s /etc/machine-id ] || tr -d '-' < /proc/sys/kernel/random/uuid > /etc/machine-id
checkout=$(arg checkout)
if [ -n "$checkout" ]; then
    # The harness's python imports this checkout from anywhere (the host's .venv has it
    # installed editable): e.g. docs/examples run by a node's python.
    "$(arg python)" -c 'import site, sys
open(site.getsitepackages()[0] + "/frrdmvpn-lab-checkout.pth", "w").write(sys.argv[1] + "\n")' \
        "$checkout"
fi
# AppArmor as Debian boots it: apparmor.service's `apparmor.systemd reload` runs this parser
# call on /etc/apparmor.d (every profile, in the mode each declares). It is called directly
# because that script skips loading in a container and systemd-detect-virt would call this
# guest one when the host's root (shared here) belongs to one. Every audit line reaches the
# kernel log (no auditd here): tests/lab/test_apparmor.py reads it.
sysctl -qw kernel.printk_ratelimit=0
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
if command -v apparmor_parser > /dev/null; then
    apparmor_parser --write-cache --replace -- /etc/apparmor.d > "$rundir/apparmor.log" 2>&1 \
        || echo "guest-init: loading AppArmor profiles failed" > /dev/console
fi
ip link set lo up
echo "guest-init: starting agent" > /dev/console
pythonpath=$(arg pythonpath)
[ -n "$pythonpath" ] && export PYTHONPATH="$pythonpath"
"$(arg python)" -m lab.agent --run "$rundir" > "$rundir/agent.log" 2>&1
echo "guest-init: agent exited ($?), powering off" > /dev/console
sync
poweroff -f
