"""A hostile function: tries, from inside an instance, what a tenant would try to reach the host,
the engine or another function, and reports how each attempt ended.

main(args) returns {"results": {probe: outcome}, "expected": {probe: outcome},
"failures": [probe, ...], "uid": N}. An outcome is "ok" or the errno's name ("EPERM", ...).
The same file runs through every path that hands code to an instance (the C API's restores, the
cold-start fallback, copies of second-level templates, prewarmd's native API and its OpenWhisk
slots): each asserts that "failures" is empty and that every probe ran.

args (all optional):
  sibling_pid     host pid of another live instance (ptrace and signal it, look into its root)
  sibling_file    a file another instance wrote into its own /tmp
  state_dir       the engine's state directory on the host
  mode            "kill_all": only kill(-1, SIGKILL), for the test that everything outside survives;
                  "write_secret": only write a file into this instance's /tmp (args "path"), for
                  a sibling to look for
"""
import ctypes
import errno
import os
import socket
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86-64 numbers (the sandbox's filter works by number; so must the probe)
NR = {"clone": 56, "ptrace": 101, "personality": 135, "chroot": 161, "mount": 165,
      "umount2": 166, "settimeofday": 164, "setns": 308, "unshare": 272,
      "name_to_handle_at": 303, "open_by_handle_at": 304, "bpf": 321, "perf_event_open": 298,
      "keyctl": 250, "add_key": 248, "userfaultfd": 323, "kexec_load": 246, "init_module": 175,
      "io_uring_setup": 425, "clone3": 435, "open_tree": 428, "fsopen": 430, "move_mount": 429,
      "mknodat": 259, "process_vm_readv": 310, "reboot": 169, "swapon": 167, "acct": 163,
      "clock_settime": 227, "pivot_root": 155, "syslog": 103, "kcmp": 312}
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000
MS_REMOUNT, MS_BIND = 32, 4096
AT_FDCWD = -100
ADDR_NO_RANDOMIZE = 0x0040000
SIGCHLD = 17

# What each attempt must end with. "ok" entries prove the probes can tell success from failure.
EXPECTED = {
    # credentials
    "uid_not_root": "ok",
    # EINVAL in a clone: its user namespace maps only its own uid and gid, so 0 does not exist.
    "setuid_0": ("EPERM", "EINVAL"),
    "setgid_0": ("EPERM", "EINVAL"),
    # file handles: the escape through /usr to the host's root inode, and asking for a handle
    "open_by_handle_at_host_root": "EPERM",
    "name_to_handle_at": "EPERM",
    # mounts
    "remount_usr_rw": "EPERM",
    "remount_root_rw": "EPERM",
    "mount_tmpfs": "EPERM",
    "umount_usr": "EPERM",
    "pivot_root": "EPERM",
    "chroot": "EPERM",
    "open_tree": "EPERM",
    "fsopen": "EPERM",
    "write_root": "EROFS",
    "write_usr": "EROFS",
    "write_tmp": "ok",
    # device nodes and devices
    "mknod_char": "EPERM",
    "mknod_block": "EPERM",
    "mknod_fifo": "ok",
    "dev_contents": "ok",
    "sys_absent": "ENOENT",
    # namespaces
    "unshare_user": "EPERM",
    "unshare_net": "EPERM",
    "setns": "EPERM",
    "clone_newuser": "EPERM",
    "clone3": "ENOSYS",
    "fork": "ok",
    # other processes
    "ptrace_sibling": "EPERM",
    "kill_sibling": "ESRCH",
    "sibling_root": "ENOENT",
    "sibling_tmp": "ENOENT",
    "process_vm_readv_self": "EPERM",
    "kcmp": "EPERM",
    # /proc
    "write_proc_sys": "EROFS",
    "proc_sys_read_only": "ok",
    "proc_kcore_masked": "ok",
    "proc_keys_masked": "ok",
    # the host's state dir by path
    "state_dir_by_path": "ENOENT",
    "host_var_lib_prewarm": "ENOENT",
    # network
    "raw_socket": "EPERM",
    "packet_socket": "EPERM",
    "udp_socket": "ok",
    "only_loopback": "ok",
    # clocks
    "clock_settime": "EPERM",
    "settimeofday": "EPERM",
    # the kernel
    "bpf": "EPERM",
    "perf_event_open": "EPERM",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "userfaultfd": "EPERM",
    "kexec_load": "EPERM",
    "init_module": "EPERM",
    "reboot": "EPERM",
    "swapon": "EPERM",
    "acct": "EPERM",
    "syslog": "EPERM",
    "io_uring_setup": "ENOSYS",
    "personality_no_aslr": "EPERM",
    "personality_query": "ok",
    # the posture itself
    "caps_empty": "ok",
    "no_new_privs": "ok",
    "seccomp_filter": "ok",
}


def name_of(err):
    return errno.errorcode.get(err, str(err))


def raw(nr, *args):
    """A system call by number: "ok", or the errno's name."""
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(NR[nr]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return "ok" if ret >= 0 else name_of(ctypes.get_errno())


def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def check(cond, what):
    if not cond:
        raise OSError(errno.EFAULT, what)


def open_by_handle():
    # ext4's root directory is inode 2 (FILEID_INO32_GEN: inode, generation 0).
    fd = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
    try:
        handle = (ctypes.c_uint * 4)(8, 1, 2, 0)   # handle_bytes, handle_type, ino, gen
        return raw("open_by_handle_at", fd, ctypes.byref(handle), os.O_RDONLY | os.O_DIRECTORY)
    finally:
        os.close(fd)


def name_to_handle():
    handle = (ctypes.c_uint * 34)(128)
    mount_id = ctypes.c_int()
    return raw("name_to_handle_at", AT_FDCWD, b"/usr", ctypes.byref(handle), ctypes.byref(mount_id), 0)


def write_file(path):
    def go():
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)
    return go


def clone_with(flags):
    ret = libc.syscall(ctypes.c_long(NR["clone"]), ctypes.c_long(flags | SIGCHLD), 0, 0, 0, 0)
    if ret == 0:
        os._exit(0)                   # a child that should never have existed
    if ret > 0:
        os.waitpid(ret, 0)
        return "ok"
    return name_of(ctypes.get_errno())


def mount_info():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4]: line.split()[5] for line in f}


def masked(path):
    def go():
        if not os.path.exists(path):
            return True               # this kernel has none: nothing to mask
        check(path in mount_info(), path + " is not masked")
        with open(path, "rb") as f:
            check(f.read(64) == b"", path + " shows content")
    return go


def make_fifo():
    os.mkfifo("/tmp/fifo")
    os.unlink("/tmp/fifo")


def fork_and_wait():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, st = os.waitpid(pid, 0)
    check(os.WEXITSTATUS(st) == 7, "child status")


def only_loopback():
    names = [name for _, name in socket.if_nameindex()]
    check(names == ["lo"], "interfaces: %r" % names)


def dev_contents():
    check(sorted(os.listdir("/dev")) == ["full", "null", "random", "urandom", "zero"],
          "/dev holds %r" % sorted(os.listdir("/dev")))


def proc_sys_read_only():
    check("ro" in mount_info().get("/proc/sys", "").split(","), "/proc/sys is writable")


def run_probes(args):
    st = status()
    uid = int(st["Uid"].split()[0])
    sibling_pid = int(args.get("sibling_pid", 0)) or 999999
    sibling_file = args.get("sibling_file", "/tmp/prewarm-sibling-secret")
    state_dir = args.get("state_dir", "/var/lib/prewarm")
    probes = {
        "uid_not_root": lambda: check(uid != 0 and all(int(v) == uid for v in st["Uid"].split()), "uid"),
        "setuid_0": lambda: os.setuid(0),
        "setgid_0": lambda: os.setgid(0),
        "open_by_handle_at_host_root": open_by_handle,
        "name_to_handle_at": name_to_handle,
        "remount_usr_rw": lambda: raw("mount", None, b"/usr", None, MS_REMOUNT | MS_BIND, None),
        "remount_root_rw": lambda: raw("mount", None, b"/", None, MS_REMOUNT | MS_BIND, None),
        "mount_tmpfs": lambda: raw("mount", b"tmpfs", b"/tmp", b"tmpfs", 0, None),
        "umount_usr": lambda: raw("umount2", b"/usr", 2),
        "pivot_root": lambda: raw("pivot_root", b"/tmp", b"/tmp"),
        "chroot": lambda: raw("chroot", b"/tmp"),
        "open_tree": lambda: raw("open_tree", AT_FDCWD, b"/usr", 1),
        "fsopen": lambda: raw("fsopen", b"tmpfs", 0),
        "write_root": write_file("/hostile"),
        "write_usr": write_file("/usr/hostile"),
        "write_tmp": write_file("/tmp/hostile"),
        "mknod_char": lambda: os.mknod("/tmp/mem", 0o600 | 0o020000, os.makedev(1, 1)),
        "mknod_block": lambda: os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0)),
        "mknod_fifo": make_fifo,
        "dev_contents": dev_contents,
        "sys_absent": lambda: os.listdir("/sys"),
        "unshare_user": lambda: raw("unshare", CLONE_NEWUSER),
        "unshare_net": lambda: raw("unshare", CLONE_NEWNET),
        "setns": lambda: raw("setns", 0, 0),
        "clone_newuser": lambda: clone_with(CLONE_NEWUSER),
        "clone3": lambda: raw("clone3", 0, 0),
        "fork": fork_and_wait,
        "ptrace_sibling": lambda: raw("ptrace", 16, sibling_pid, 0, 0),   # PTRACE_ATTACH
        "kill_sibling": lambda: os.kill(sibling_pid, 0),
        "sibling_root": lambda: os.listdir("/proc/%d/root" % sibling_pid),
        "sibling_tmp": lambda: open(sibling_file).read(),
        "process_vm_readv_self": lambda: raw("process_vm_readv", os.getpid(), 0, 0, 0, 0, 0),
        "kcmp": lambda: raw("kcmp", os.getpid(), os.getpid(), 0, 0, 0),
        "write_proc_sys": write_file("/proc/sys/kernel/hostname"),
        "proc_sys_read_only": proc_sys_read_only,
        "proc_kcore_masked": masked("/proc/kcore"),
        "proc_keys_masked": masked("/proc/keys"),
        "state_dir_by_path": lambda: os.listdir(state_dir),
        "host_var_lib_prewarm": lambda: os.listdir("/var/lib/prewarm"),
        "raw_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close(),
        "packet_socket": lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close(),
        "udp_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close(),
        "only_loopback": only_loopback,
        "clock_settime": lambda: time.clock_settime(time.CLOCK_REALTIME, time.time()),
        "settimeofday": lambda: raw("settimeofday", (ctypes.c_long * 2)(int(time.time()), 0), None),
        "bpf": lambda: raw("bpf", 0, 0, 0),
        "perf_event_open": lambda: raw("perf_event_open", 0, 0, -1, -1, 0),
        "keyctl": lambda: raw("keyctl", 0, 0, 0),
        "add_key": lambda: raw("add_key", b"user", b"k", b"v", 1, -2),
        "userfaultfd": lambda: raw("userfaultfd", 0),
        "kexec_load": lambda: raw("kexec_load", 0, 0, 0, 0),
        "init_module": lambda: raw("init_module", 0, 0, b""),
        # Arguments a privileged caller would see refused too (bad magic, no file, "off"), so
        # that the probe is harmless even where it is run outside a sandbox by mistake.
        "reboot": lambda: raw("reboot", 0, 0, 0, 0),
        "swapon": lambda: raw("swapon", b"/nonexistent", 0),
        "acct": lambda: raw("acct", None),
        "syslog": lambda: raw("syslog", 3, None, 0),
        "io_uring_setup": lambda: raw("io_uring_setup", 1, (ctypes.c_char * 120)()),
        "personality_no_aslr": lambda: raw("personality", ADDR_NO_RANDOMIZE),
        "personality_query": lambda: raw("personality", 0xffffffff),
        "caps_empty": lambda: check(all(int(st[k], 16) == 0 for k in
                                        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")), "caps"),
        "no_new_privs": lambda: check(st["NoNewPrivs"] == "1", "no_new_privs"),
        "seccomp_filter": lambda: check(st["Seccomp"] == "2", "seccomp"),
    }
    results = {}
    for name, fn in probes.items():
        try:
            outcome = fn()
        except OSError as exc:
            outcome = name_of(exc.errno)
        results[name] = outcome if isinstance(outcome, str) else "ok"
    failures = sorted(k for k in EXPECTED if results.get(k) not in
                      (EXPECTED[k] if isinstance(EXPECTED[k], tuple) else (EXPECTED[k],)))
    return {"results": results, "expected": EXPECTED, "failures": failures, "uid": uid,
            "status": {k: st[k] for k in ("Uid", "CapEff", "CapBnd", "NoNewPrivs", "Seccomp")}}


def main(args):
    if args.get("mode") == "write_secret":
        with open(args["path"], "w") as f:
            f.write("secret of uid %d" % os.getuid())
        return {"written": args["path"], "uid": os.getuid()}
    if args.get("mode") == "kill_all":
        try:
            os.kill(-1, 9)
            return {"kill_all": "ok", "uid": os.getuid()}
        except OSError as exc:
            return {"kill_all": name_of(exc.errno), "uid": os.getuid()}
    return run_probes(args)
