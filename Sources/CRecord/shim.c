#define _GNU_SOURCE
#include "CRecord.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/* What crec_spawn leaves for the recorder: its end of the socket the
 * listener comes on, the pipe that lets the child go on, the guardian's
 * hand-over pipe and the shared last-received notification id. */
static int crec_spawn_socket = -1, crec_spawn_go = -1, crec_guardian_handover = -1;
static volatile uint64_t *crec_guardian_received;

int crec_spawn_handover(void) { return crec_guardian_handover; }
volatile uint64_t *crec_spawn_received(void) { return crec_guardian_received; }

/* Every tracee: syscall stops marked, threads, forks and execs followed. */
static const long trace_options = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
				  PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC;

const int64_t crec_nr_ioctl = SYS_ioctl, crec_nr_open = SYS_open, crec_nr_openat = SYS_openat, crec_nr_close = SYS_close;

/* The recorder's seccomp filter.  VFIO ioctls (request type ';') stop for
 * the tracer (SECCOMP_RET_TRACE): their outcome is read at their exit.
 * open, openat and close go to the user-notification listener
 * (SECCOMP_RET_USER_NOTIF), answered by the recorder and, once it is gone,
 * by the guardian (start_guardian): a recorder that dies changes no
 * result but the VFIO ioctls' (ENOSYS without a tracer).  Everything else
 * runs unfiltered.  Returns the listener fd (close-on-exec), or -1. */
static pid_t start_guardian(int alive, int from_child, volatile uint64_t *received);

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
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
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
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/* Sends `fd` over the unix socket `sock` (SCM_RIGHTS). */
static int send_fd(int sock, int fd)
{
	char byte = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;

	memset(ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Receives an fd sent by send_fd, waiting up to `timeout_ms` (-1: for
 * ever); -1 when none came (the peer exited, or the time is up). */
static int recv_fd_wait(int sock, int timeout_ms)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t n;
	int fd;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

pid_t crec_spawn(const char *file, char *const argv[], const int *default_signals, int ndefault, int *err)
{
	int sv[2] = { -1, -1 }, sg[2] = { -1, -1 }, go[2] = { -1, -1 }, alive[2] = { -1, -1 };
	volatile uint64_t *shared = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (shared == MAP_FAILED || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sg) || pipe2(go, O_CLOEXEC) || pipe2(alive, O_CLOEXEC)) {
		*err = errno;
		goto fail;
	}
	*shared = 0;
	/* The guardian first: it must hold the listener before the program
	 * makes a call only a listener can answer. */
	if (start_guardian(alive[0], sg[1], shared) < 0) {
		*err = errno;
		goto fail;
	}
	close(alive[0]);
	close(sg[1]);
	alive[0] = sg[1] = -1;
	pid = fork();
	if (pid < 0) {
		*err = errno;
		goto fail;
	}
	if (pid == 0) {
		int listener;
		char b;
		ssize_t n;

		close(sv[0]);
		close(go[1]);
		close(alive[1]);
		/* Signals the recorder ignores for itself go back to their
		 * default, so the program sees the dispositions it would have had. */
		for (int i = 0; i < ndefault; i++)
			signal(default_signals[i], SIG_DFL);
		/* Wait for the tracer to seize us (a byte on `go`), then filter,
		 * hand the listener to the guardian (and wait for its word),
		 * then to the recorder, then exec: the exec is the first traced
		 * event.  No SIGSTOP: a group-stop still in effect is reinstated
		 * when a tracer goes away, and would stop the program for good if
		 * the recorder died.  The fds are all close-on-exec, so the
		 * program never sees them (and no close of theirs goes to the
		 * listener).  A failure exits 127, as a shell does. */
		do
			n = read(go[0], &b, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || (listener = install_filter()) < 0)
			_exit(127);
		if (send_fd(sg[0], listener) == 0)
			while (read(sg[0], &b, 1) < 0 && errno == EINTR)
				;
		if (send_fd(sv[1], listener) == 0)
			execvp(file, argv);
		_exit(127);
	}
	close(sv[1]);
	close(go[0]);
	close(sg[0]);
	*err = 0;
	crec_spawn_socket = sv[0];
	crec_spawn_go = go[1];
	crec_guardian_handover = alive[1];
	crec_guardian_received = shared;
	return pid;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0) close(sv[i]);
		if (sg[i] >= 0) close(sg[i]);
		if (go[i] >= 0) close(go[i]);
		if (alive[i] >= 0) close(alive[i]);
	}
	return -1;
}

int crec_spawn_listener(void)
{
	/* The child sends it at once; one stopped on the way (a signal stop
	 * we, waiting here, cannot resume) must not hang us. */
	int fd = recv_fd_wait(crec_spawn_socket, 10000);

	close(crec_spawn_socket);
	crec_spawn_socket = -1;
	return fd;
}

int crec_notif_recv(int listener, int timeout_ms, volatile uint64_t *received, struct crec_notif *out)
{
	struct seccomp_notif n;
	struct pollfd p = { .fd = listener, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return errno == EINTR ? 0 : -1;
	if (r == 0)
		return 0;
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
		errno = EPIPE;
		return -1;
	}
	memset(&n, 0, sizeof(n));
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n))
		/* ENOENT: the thread was killed before it was received. */
		return errno == ENOENT || errno == EINTR ? 0 : -1;
	if (received)
		__atomic_store_n(received, n.id, __ATOMIC_SEQ_CST);
	out->id = n.id;
	out->pid = n.pid;
	out->nr = n.data.nr;
	for (int i = 0; i < 6; i++)
		out->args[i] = n.data.args[i];
	return 1;
}

static int notif_respond(int listener, uint64_t id, int error, uint32_t flags)
{
	struct seccomp_notif_resp r = { .id = id, .error = error, .flags = flags };

	return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

int crec_notif_continue(int listener, uint64_t id)
{
	return notif_respond(listener, id, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

int crec_notif_fail(int listener, uint64_t id, int err) { return notif_respond(listener, id, -err, 0); }

int crec_notif_id_valid(int listener, uint64_t id)
{
	return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* Set once SECCOMP_ADDFD_FLAG_SEND (5.14) was refused: 5.9 to 5.13 install
 * the fd and answer the notification in two steps. */
static int addfd_send_unsupported;

int crec_notif_addfd_send(int listener, uint64_t id, int fd, int cloexec)
{
	struct seccomp_notif_addfd a = {
		.id = id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd, .newfd_flags = cloexec ? O_CLOEXEC : 0,
	};
	struct seccomp_notif_resp r = { .id = id };
	int newfd;

	if (!__atomic_load_n(&addfd_send_unsupported, __ATOMIC_RELAXED)) {
		newfd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
		if (newfd >= 0 || errno != EINVAL)
			return newfd;
		__atomic_store_n(&addfd_send_unsupported, 1, __ATOMIC_RELAXED);
	}
	/* The fd is the syscall's result: install it, then answer with its
	 * number. A tracee killed in between dies with the fd in its table. */
	a.flags = 0;
	newfd = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (newfd < 0)
		return -1;
	r.val = newfd;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r))
		return -1;
	return newfd;
}

/* The guardian, forked before the program: it gets the listener from the
 * program's process before that process makes its first filtered call, and
 * once the recorder is gone (its end of `alive` closes, by exit or by any
 * kill) answers every notification with CONTINUE until no task uses the
 * filter any more.  It first answers what the recorder received but did
 * not answer: ids are handed out in sequence, and *received is the last one
 * the recorder got. */
static void guardian(int from_child, int alive, volatile uint64_t *received)
{
	int listener = -1, child_done = 0;
	uint64_t base;
	char b;

	for (;;) {
		struct pollfd p[2] = { { .fd = alive, .events = POLLIN }, { .fd = child_done ? -1 : from_child, .events = POLLIN } };
		int r = poll(p, 2, -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (p[1].revents) {
			if (listener < 0 && (listener = recv_fd_wait(from_child, -1)) >= 0)
				(void)!write(from_child, "a", 1);
			else
				child_done = 1;
		}
		if (p[0].revents && read(alive, &b, 1) <= 0)
			break;
	}
	/* The recorder is gone: a listener still on its way is awaited. */
	if (listener < 0 && !child_done)
		listener = recv_fd_wait(from_child, -1);
	close(from_child);
	if (listener < 0)
		return;
	base = __atomic_load_n(received, __ATOMIC_SEQ_CST);
	if (base)
		for (uint64_t id = base; id < base + 64; id++)
			if (crec_notif_id_valid(listener, id))
				crec_notif_continue(listener, id);
	for (;;) {
		struct crec_notif n;
		int r = crec_notif_recv(listener, -1, NULL, &n);

		if (r < 0)
			break;
		if (r > 0)
			crec_notif_continue(listener, n.id);
	}
}

/* Forks the guardian with `alive` and `from_child` (its ends); -1 on failure. */
static pid_t start_guardian(int alive, int from_child, volatile uint64_t *received)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* Out of the recorder's session (a kill of its process group or
		 * a hangup is not for us), every signal a terminal or a parent
		 * sends ignored, and nothing of the recorder's kept open. */
		setsid();
		for (int s = 1; s < 32; s++)
			if (s != SIGKILL && s != SIGSTOP && s != SIGSEGV && s != SIGBUS && s != SIGILL && s != SIGFPE && s != SIGABRT)
				signal(s, SIG_IGN);
		for (int fd = 0; fd < 4096; fd++)
			if (fd != alive && fd != from_child)
				close(fd);
		guardian(from_child, alive, received);
		_exit(0);
	}
	return pid;
}

int crec_seize_spawned(pid_t pid)
{
	/* Attached, a running process has no filter: seccomp stops only here. */
	int r = (int)ptrace(PTRACE_SEIZE, pid, 0, (void *)(trace_options | PTRACE_O_TRACESECCOMP)), e = errno;

	/* Go on (a byte), or give up (end of file: the child exits 127). */
	if (r == 0 && write(crec_spawn_go, "g", 1) != 1) {
		e = errno;
		r = -1;
	}
	close(crec_spawn_go);
	crec_spawn_go = -1;
	errno = e;
	return r;
}

int crec_attach(pid_t pid)
{
	if (ptrace(PTRACE_SEIZE, pid, 0, (void *)trace_options))
		return -1;
	return (int)ptrace(PTRACE_INTERRUPT, pid, 0, 0);
}

int crec_interrupt(pid_t pid) { return (int)ptrace(PTRACE_INTERRUPT, pid, 0, 0); }
int crec_cont(pid_t pid, int sig) { return (int)ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig); }
int crec_syscall_step(pid_t pid, int sig) { return (int)ptrace(PTRACE_SYSCALL, pid, 0, (void *)(long)sig); }
int crec_listen(pid_t pid) { return (int)ptrace(PTRACE_LISTEN, pid, 0, 0); }
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
