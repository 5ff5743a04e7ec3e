#define _GNU_SOURCE
#include "CRecord.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

const int64_t crec_nr_ioctl = SYS_ioctl, crec_nr_open = SYS_open, crec_nr_openat = SYS_openat, crec_nr_close = SYS_close;

/* Stops (SECCOMP_RET_TRACE) for ioctls whose request has type ';' (VFIO),
 * and for open, openat and close; everything else runs untraced. */
static int install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_open, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 2, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		/* ioctl: the low 32 bits of the request, type byte (bits 8..15). */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xff),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ';', 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

pid_t crec_spawn(const char *file, char *const argv[], const int *default_signals, int ndefault, int *err)
{
	pid_t pid = fork();

	if (pid < 0) {
		*err = errno;
		return -1;
	}
	if (pid == 0) {
		/* Signals the recorder ignores for itself go back to their
		 * default, so the program sees the dispositions it would have had. */
		for (int i = 0; i < ndefault; i++)
			signal(default_signals[i], SIG_DFL);
		/* Stop for the tracer first, then filter, then exec: the exec is
		 * the first traced event.  A failure exits 127, as a shell does. */
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 && raise(SIGSTOP) == 0 && install_filter() == 0)
			execvp(file, argv);
		_exit(127);
	}
	*err = 0;
	return pid;
}

int crec_set_options(pid_t pid, int use_seccomp)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;

	if (use_seccomp)
		opts |= PTRACE_O_TRACESECCOMP;
	return (int)ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)opts);
}

int crec_attach(pid_t pid)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;

	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)opts))
		return -1;
	return (int)ptrace(PTRACE_INTERRUPT, pid, 0, 0);
}

int crec_interrupt(pid_t pid) { return (int)ptrace(PTRACE_INTERRUPT, pid, 0, 0); }
int crec_cont(pid_t pid, int sig) { return (int)ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig); }
int crec_syscall_step(pid_t pid, int sig) { return (int)ptrace(PTRACE_SYSCALL, pid, 0, (void *)(long)sig); }
int crec_detach(pid_t pid, int sig) { return (int)ptrace(PTRACE_DETACH, pid, 0, (void *)(long)sig); }

int crec_get_syscall(pid_t pid, struct crec_syscall *out)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, pid, 0, &r))
		return -1;
	out->nr = (int64_t)r.orig_rax;
	out->args[0] = r.rdi;
	out->args[1] = r.rsi;
	out->args[2] = r.rdx;
	out->args[3] = r.r10;
	out->args[4] = r.r8;
	out->args[5] = r.r9;
	out->ret = (int64_t)r.rax;
	return 0;
}

long crec_event_msg(pid_t pid)
{
	unsigned long msg = 0;

	ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
	return (long)msg;
}

pid_t crec_wait(int *kind, int *value, int *event, int *syscall_stop)
{
	int status;
	pid_t pid = waitpid(-1, &status, __WALL);

	*event = 0;
	*syscall_stop = 0;
	if (pid < 0)
		return pid;
	if (WIFEXITED(status)) {
		*kind = 0;
		*value = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		*kind = 1;
		*value = WTERMSIG(status);
	} else {
		*kind = 2;
		*value = WSTOPSIG(status);
		*event = (status >> 16) & 0xff;
		if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
			*syscall_stop = 1;
			*value = SIGTRAP;
		}
	}
	return pid;
}

ssize_t crec_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

int crec_ignore_signal(int sig)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;

	sigemptyset(&ign.sa_mask);
	if (sigaction(sig, &ign, &old))
		return -1;
	return old.sa_handler == SIG_IGN;
}
