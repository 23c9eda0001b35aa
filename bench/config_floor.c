/*
 * The kernel's price for a container of bench/'s `true` bundle, without a
 * runtime: the system calls every runtime must make for that config.json
 * (bundles/hello with /bin/true), made by the smallest C program that makes
 * them, in the order runc, crun and minirun make them.
 *
 *   config_floor ROOTFS ID
 *
 * Parent: a cgroup directory in every hierarchy the host mounts (each v1
 * controller, or the one v2 tree), the config's device rules (deny all, then
 * the default allow list every runtime adds), clone3 with the config's six
 * namespaces (into the cgroup on v2). Child: joins the v1 cgroups, sets the
 * hostname, brings lo up, makes the mounts of the config (proc, /dev tmpfs,
 * devpts, shm, mqueue, sysfs, the cgroup tree read-only), the default device
 * nodes and /dev symlinks, pivot_root into the rootfs and detaches the old
 * root, masks and write-protects the config's paths, starts a session, sets
 * RLIMIT_NOFILE, drops to the config's four capabilities with no_new_privs,
 * and execs /bin/true. The parent waits and removes the cgroups.
 *
 * What it leaves out is exactly a runtime's own work: parsing and validating
 * config.json, its state directory, its process starts (the call, and the
 * re-exec that protects its binary: CVE-2019-5736), the handshakes between its
 * processes. bench.py times it beside the namespace floor (`unshare`) and the
 * runtimes, interleaved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_HIERARCHIES 16

static char cgroups[MAX_HIERARCHIES][1024]; /* this container's directories */
static char names[MAX_HIERARCHIES][128];   /* a v1 hierarchy's directory name */
static char options[MAX_HIERARCHIES][128]; /* and its mount option naming it */
static int hierarchies, made, unified;
static pid_t parent;

static void die(const char *what) {
    fprintf(stderr, "config_floor: %s: %s\n", what, strerror(errno));
    /* The parent leaves no cgroup behind; the child's exit reaches it. */
    while (getpid() == parent && made > 0) rmdir(cgroups[--made]);
    exit(125);
}

static void write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) die(path);
    close(fd);
}

/* This process's cgroup in the hierarchy /proc/self/cgroup names `key`
 * ("cpu", "name=systemd", or "" for v2). */
static const char *own_cgroup(const char *key, char *out, size_t size) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) die("/proc/self/cgroup");
    char line[1024];
    snprintf(out, size, "/");
    while (fgets(line, sizeof line, f)) {
        char *list = strchr(line, ':'), *path = list ? strchr(list + 1, ':') : NULL;
        if (!path) continue;
        *path++ = 0;
        path[strcspn(path, "\n")] = 0;
        if (!strcmp(list + 1, key)) snprintf(out, size, "%s", path);
    }
    fclose(f);
    return out;
}

/* A directory for the container in every cgroup hierarchy mounted under
 * /sys/fs/cgroup (each v1 one, or the v2 tree when the host is unified),
 * below this process's own cgroup there, as runtimes place it. */
static void find_hierarchies(const char *id) {
    FILE *m = fopen("/proc/self/mounts", "re");
    if (!m) die("/proc/self/mounts");
    char dev[256], dir[256], type[64], opts[512], own[512];
    while (fscanf(m, "%255s %255s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
        if (strncmp(dir, "/sys/fs/cgroup", 14) || hierarchies == MAX_HIERARCHIES) continue;
        if (!strcmp(type, "cgroup2") && !strcmp(dir, "/sys/fs/cgroup")) {
            unified = 1;
            own_cgroup("", own, sizeof own);
            snprintf(cgroups[0], 1024, "%s%s/%s", dir, strcmp(own, "/") ? own : "", id);
            hierarchies = 1;
            break;
        }
        if (strcmp(type, "cgroup")) continue;
        const char *name = strrchr(dir, '/') + 1;
        snprintf(names[hierarchies], 128, "%s", name);
        snprintf(options[hierarchies], 128, "%s%s", strcmp(name, "systemd") ? "" : "name=", name);
        own_cgroup(options[hierarchies], own, sizeof own);
        snprintf(cgroups[hierarchies++], 1024, "%s%s/%s", dir, strcmp(own, "/") ? own : "", id);
    }
    fclose(m);
}

static const char *device_rules[] = {
    "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
    "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm",
};

/* A new v1 cpuset has no CPUs or memory nodes until given its parent's. */
static void inherit_cpuset(const char *cgroup, const char *file) {
    char path[1100], value[256] = "";
    snprintf(path, sizeof path, "%.1000s/../%s", cgroup, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, value, sizeof value - 1);
    if (n < 0) die(path);
    value[n] = 0;
    close(fd);
    snprintf(path, sizeof path, "%.1000s/%s", cgroup, file);
    write_file(path, value);
}

static void make_cgroups(void) {
    char path[1100];
    for (int i = 0; i < hierarchies; i++) {
        if (mkdir(cgroups[i], 0755)) die(cgroups[i]);
        made++;
        if (!unified && !strcmp(names[i], "cpuset")) {
            inherit_cpuset(cgroups[i], "cpuset.cpus");
            inherit_cpuset(cgroups[i], "cpuset.mems");
        }
        if (unified || strcmp(names[i], "devices")) continue;
        snprintf(path, sizeof path, "%.1000s/devices.deny", cgroups[i]);
        write_file(path, "a");
        snprintf(path, sizeof path, "%.1000s/devices.allow", cgroups[i]);
        for (size_t r = 0; r < sizeof device_rules / sizeof *device_rules; r++)
            write_file(path, device_rules[r]);
    }
    /* On v2 the device rules are an eBPF program: minirun, runc and crun
     * load one; this program does not, so it is cheaper there. */
}

static void at(const char *root, const char *rel, char *out) {
    snprintf(out, 4096, "%s/%s", root, rel);
}

static void mount_in(const char *root, const char *rel, const char *src, const char *type,
                     unsigned long flags, const char *data) {
    char path[4096];
    at(root, rel, path);
    mkdir(path, 0755);
    if (mount(src, path, type, flags, data)) die(path);
}

static void mount_tree(const char *root) {
    char path[4096];
    const unsigned long common = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL)) die("making / a slave");
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL)) die(root);
    mount_in(root, "proc", "proc", "proc", 0, NULL);
    mount_in(root, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    mount_in(root, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mount_in(root, "dev/shm", "shm", "tmpfs", common, "mode=1777,size=65536k");
    mount_in(root, "dev/mqueue", "mqueue", "mqueue", common, NULL);
    mount_in(root, "sys", "sysfs", "sysfs", common | MS_RDONLY, NULL);
    if (unified) {
        mount_in(root, "sys/fs/cgroup", "cgroup", "cgroup2", common | MS_RDONLY, NULL);
    } else {
        mount_in(root, "sys/fs/cgroup", "tmpfs", "tmpfs", common, "mode=755");
        for (int i = 0; i < hierarchies; i++) {
            char rel[256];
            snprintf(rel, sizeof rel, "sys/fs/cgroup/%s", names[i]);
            mount_in(root, rel, "cgroup", "cgroup", common | MS_RDONLY, options[i]);
        }
        at(root, "sys/fs/cgroup", path);
        if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | common, NULL)) die(path);
    }
    static const struct { const char *name; mode_t type; int major, minor; } nodes[] = {
        {"null", S_IFCHR, 1, 3}, {"zero", S_IFCHR, 1, 5}, {"full", S_IFCHR, 1, 7},
        {"random", S_IFCHR, 1, 8}, {"urandom", S_IFCHR, 1, 9}, {"tty", S_IFCHR, 5, 0},
    };
    umask(0);
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        snprintf(path, sizeof path, "%s/dev/%s", root, nodes[i].name);
        if (mknod(path, nodes[i].type | 0666, makedev(nodes[i].major, nodes[i].minor))) die(path);
    }
    umask(022);
    static const char *links[][2] = {
        {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
    };
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        snprintf(path, sizeof path, "%s/dev/%s", root, links[i][1]);
        if (symlink(links[i][0], path)) die(path);
    }
}

static void switch_root(const char *root) {
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fchdir(fd)) die(root);
    if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root");
    if (mount(NULL, ".", NULL, MS_REC | MS_SLAVE, NULL)) die("making the old root a slave");
    if (umount2(".", MNT_DETACH)) die("detaching the old root");
    close(fd);
    if (chdir("/")) die("/");
}

static void protect_paths(void) {
    static const char *readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                     "/proc/sysrq-trigger"};
    static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list",
                                   "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                                   "/proc/scsi"};
    for (size_t i = 0; i < sizeof readonly / sizeof *readonly; i++) {
        if (mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL)) {
            if (errno == ENOENT) continue;
            die(readonly[i]);
        }
        if (mount(NULL, readonly[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
            die(readonly[i]);
    }
    for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
        if (!mount("/dev/null", masked[i], NULL, MS_BIND, NULL)) continue;
        if (errno == ENOTDIR && !mount("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL)) continue;
        if (errno != ENOENT) die(masked[i]);
    }
}

static void drop_privileges(void) {
    const unsigned long keep = 1UL << CAP_AUDIT_WRITE | 1UL << CAP_KILL |
                               1UL << CAP_NET_BIND_SERVICE | 1UL << CAP_NET_RAW;
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (!(keep >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) die("PR_CAPBSET_DROP");
    if (setgroups(0, NULL) || setresgid(0, 0, 0) || setresuid(0, 0, 0)) die("setting ids");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{(uint32_t)keep, (uint32_t)keep, (uint32_t)keep}};
    if (syscall(SYS_capset, &header, data)) die("capset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)) die("PR_CAP_AMBIENT");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("PR_SET_NO_NEW_PRIVS");
}

static int child(const char *root) {
    char path[1100];
    if (!unified)
        for (int i = 0; i < hierarchies; i++) {
            snprintf(path, sizeof path, "%.1000s/tasks", cgroups[i]);
            write_file(path, "0");
        }
    if (sethostname("hello", 5)) die("sethostname");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {.ifr_name = "lo"};
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr)) die("lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr)) die("lo up");
    close(s);
    mount_tree(root);
    switch_root(root);
    protect_paths();
    if (setsid() < 0) die("setsid");
    struct rlimit nofile = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &nofile)) die("RLIMIT_NOFILE");
    drop_privileges();
    char *argv[] = {"/bin/true", NULL};
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(argv[0], argv, envp);
    die("exec /bin/true");
    return 125;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: config_floor ROOTFS ID\n");
        return 2;
    }
    const char *root = argv[1], *id = argv[2];
    parent = getpid();
    find_hierarchies(id);
    make_cgroups();
    struct clone_args args = {
        .flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                 CLONE_NEWCGROUP,
        .exit_signal = SIGCHLD,
    };
    int cgroup_fd = -1;
    if (unified) {
        cgroup_fd = open(cgroups[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cgroup_fd < 0) die(cgroups[0]);
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) die("clone3");
    if (pid == 0) return child(root);
    int status;
    if (waitpid(pid, &status, 0) < 0) die("waitpid");
    while (made > 0)
        if (rmdir(cgroups[--made])) die(cgroups[made]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
