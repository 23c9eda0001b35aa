// hot-trace: which functions of a binary a command runs, in the order first run.
//
//   hot-trace SYMBOLS BINARY OUT -- COMMAND [ARG...]
//
// SYMBOLS lists the binary's functions, one "ADDRESS NAME" per line (hex file
// address, as `nm -P` gives them). Every process of COMMAND that runs BINARY
// (after any exec, through forks and clones, in any namespace) gets a breakpoint
// at each function's first byte; the first hit of one appends its name to OUT
// (several commands can share one file; COMMAND's own output is left alone)
// and puts the byte back, so each function costs one trap per process image.
// A process that execs something else is let go.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct func {
	uint64_t addr;
	char *name;
	unsigned char orig;
	int seen;
};

static struct func *funcs;
static size_t nfuncs;
static FILE *out;
static ino_t bin_ino;
static dev_t bin_dev;

#define MAXPROC 4096
static struct {
	pid_t pid;
	uint64_t base; // 0: not running BINARY
} procs[MAXPROC];

static int by_addr(const void *a, const void *b)
{
	const struct func *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static struct func *find(uint64_t addr)
{
	size_t lo = 0, hi = nfuncs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (funcs[mid].addr == addr)
			return &funcs[mid];
		if (funcs[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int slot(pid_t pid)
{
	int free_slot = -1;
	for (int i = 0; i < MAXPROC; i++) {
		if (procs[i].pid == pid)
			return i;
		if (procs[i].pid == 0 && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0) {
		fprintf(stderr, "hot-trace: more than %d processes\n", MAXPROC);
		exit(1);
	}
	procs[free_slot].pid = pid;
	procs[free_slot].base = 0;
	return free_slot;
}

// The load address of BINARY in pid (its mapping at file offset 0), or 0.
static uint64_t load_base(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	uint64_t base = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long start, off, ino;
		unsigned maj, min;
		if (sscanf(line, "%lx-%*x %*s %lx %x:%x %lu", &start, &off, &maj, &min, &ino) == 5 &&
		    off == 0 && ino == bin_ino && makedev(maj, min) == bin_dev) {
			base = start;
			break;
		}
	}
	fclose(f);
	return base;
}

static int mem_fd(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	return open(path, O_RDWR);
}

// Breakpoints on every function not yet seen (a fresh image of BINARY).
static void arm(pid_t pid, uint64_t base)
{
	int fd = mem_fd(pid);
	if (fd < 0) {
		perror("hot-trace: /proc/PID/mem");
		exit(1);
	}
	unsigned char cc = 0xcc;
	for (size_t i = 0; i < nfuncs; i++) {
		if (pread(fd, &funcs[i].orig, 1, base + funcs[i].addr) != 1 ||
		    pwrite(fd, &cc, 1, base + funcs[i].addr) != 1) {
			fprintf(stderr, "hot-trace: writing a breakpoint at %s: %s\n", funcs[i].name, strerror(errno));
			exit(1);
		}
	}
	close(fd);
}

// A trap at a breakpoint: note the function, put its byte back, rerun it.
static int on_trap(pid_t pid, uint64_t base)
{
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &regs) < 0)
		return 0;
	uint64_t at = regs.rip - 1;
	struct func *fn = find(at - base);
	if (!fn)
		return 0;
	if (!fn->seen) {
		fn->seen = 1;
		fprintf(out, "%s\n", fn->name);
	}
	int fd = mem_fd(pid);
	if (fd < 0 || pwrite(fd, &fn->orig, 1, at) != 1) {
		perror("hot-trace: restoring a byte");
		exit(1);
	}
	close(fd);
	regs.rip = at;
	ptrace(PTRACE_SETREGS, pid, 0, &regs);
	return 1;
}

static void load_symbols(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(1);
	}
	size_t cap = 1 << 14;
	funcs = malloc(cap * sizeof *funcs);
	char line[8192], name[8000];
	unsigned long addr;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%lx %7999s", &addr, name) != 2)
			continue;
		if (nfuncs == cap)
			funcs = realloc(funcs, (cap *= 2) * sizeof *funcs);
		funcs[nfuncs++] = (struct func){ .addr = addr, .name = strdup(name) };
	}
	fclose(f);
	qsort(funcs, nfuncs, sizeof *funcs, by_addr);
	// Aliases share an address: one breakpoint, the first name.
	size_t out = 0;
	for (size_t i = 0; i < nfuncs; i++)
		if (out == 0 || funcs[out - 1].addr != funcs[i].addr)
			funcs[out++] = funcs[i];
	nfuncs = out;
}

int main(int argc, char **argv)
{
	if (argc < 6 || strcmp(argv[4], "--") != 0) {
		fprintf(stderr, "usage: hot-trace SYMBOLS BINARY OUT -- COMMAND [ARG...]\n");
		return 2;
	}
	load_symbols(argv[1]);
	struct stat st;
	if (stat(argv[2], &st) < 0) {
		perror(argv[2]);
		return 1;
	}
	bin_ino = st.st_ino;
	bin_dev = st.st_dev;
	out = fopen(argv[3], "a");
	if (!out) {
		perror(argv[3]);
		return 1;
	}
	setvbuf(out, NULL, _IOLBF, 0);

	pid_t child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		raise(SIGSTOP);
		execvp(argv[5], argv + 5);
		perror(argv[5]);
		_exit(127);
	}
	int status;
	waitpid(child, &status, 0);
	ptrace(PTRACE_SETOPTIONS, child, 0,
	       PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC |
		       PTRACE_O_EXITKILL);
	slot(child);
	ptrace(PTRACE_CONT, child, 0, 0);

	int exit_code = 0;
	for (;;) {
		pid_t pid = waitpid(-1, &status, __WALL);
		if (pid < 0) {
			if (errno == ECHILD)
				break;
			continue;
		}
		int i = slot(pid);
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (pid == child)
				exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			procs[i].pid = 0;
			continue;
		}
		if (!WIFSTOPPED(status))
			continue;
		int sig = WSTOPSIG(status), event = status >> 16, pass = 0;
		if (event == PTRACE_EVENT_EXEC) {
			procs[i].base = load_base(pid);
			if (!procs[i].base) {
				ptrace(PTRACE_DETACH, pid, 0, 0);
				procs[i].pid = 0;
				continue;
			}
			arm(pid, procs[i].base);
		} else if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
			   event == PTRACE_EVENT_CLONE) {
			unsigned long new_pid;
			ptrace(PTRACE_GETEVENTMSG, pid, 0, &new_pid);
			int j = slot((pid_t)new_pid);
			procs[j].base = procs[i].base;
		} else if (event) {
			// other events: nothing to pass on
		} else if (sig == SIGTRAP && procs[i].base && on_trap(pid, procs[i].base)) {
			// our breakpoint
		} else if (sig == SIGSTOP) {
			// a new child's first stop, or a stop we pass on as a stop
		} else {
			pass = sig;
		}
		ptrace(PTRACE_CONT, pid, 0, pass);
	}
	return exit_code;
}
