#ifndef CRECORD_H
#define CRECORD_H
/*
 * ptrace, seccomp and process memory access for the recorder, with fixed
 * signatures Swift can call (ptrace is variadic; process_vm_readv and the
 * wait status macros do not import).
 */
#include <stdint.h>
#include <sys/types.h>

/* One syscall as the tracer sees it at a stop. */
struct crec_syscall {
	int64_t nr;
	uint64_t args[6];
	int64_t ret;
};

/* Forks and execs `file` (searched in PATH) with `argv`, to be seized by
 * crec_seize_spawned, with the recorder's seccomp filter: it stops only for
 * VFIO ioctls (request type ';'); its open, openat and close go to a
 * user-notification listener, which crec_spawn_listener() returns once the
 * child has been seized, and which the guardian process forked first holds
 * too.  The `ndefault` signals in `default_signals` are reset to SIG_DFL in
 * the child (the recorder ignores them for itself).  Returns the pid, or -1
 * with *err set. */
pid_t crec_spawn(const char *file, char *const argv[], const int *default_signals, int ndefault, int *err);
int crec_spawn_listener(void);

/* One seccomp user notification: a syscall a tracee entered. */
struct crec_notif {
	uint64_t id;
	uint32_t pid;
	int64_t nr;
	uint64_t args[6];
};

/* Waits up to `timeout_ms` (-1: forever) for a notification.  1: `out`
 * holds one (its id also stored in *received when given); 0: none yet;
 * -1: the listener is done (no task uses the filter any more: errno EPIPE)
 * or failed. */
int crec_notif_recv(int listener, int timeout_ms, volatile uint64_t *received, struct crec_notif *out);
/* Lets the syscall run as the tracee made it. */
int crec_notif_continue(int listener, uint64_t id);
/* Fails the syscall with `err` without running it. */
int crec_notif_fail(int listener, uint64_t id, int err);
/* 1 when the notification is still pending (its thread still waits). */
int crec_notif_id_valid(int listener, uint64_t id);
/* Installs `fd` in the tracee at its lowest free number and makes that the
 * syscall's result, in one step; returns the number, or -1 (errno). */
int crec_notif_addfd_send(int listener, uint64_t id, int fd, int cloexec);

/* Left by crec_spawn: the guardian (see shim.c) answers the listener's
 * notifications once the hand-over fd is closed (the recorder's exit or
 * death); the received pointer is where crec_notif_recv keeps the last
 * notification id the recorder got, for the guardian to finish. */
int crec_spawn_handover(void);
volatile uint64_t *crec_spawn_received(void);

/* Ignores `sig` in the recorder; returns 1 when it was ignored already
 * (then the program should inherit that), 0 when not, -1 on error. */
int crec_ignore_signal(int sig);

/* Seizes the child crec_spawn made (PTRACE_SEIZE with seccomp,
 * clone/fork/vfork/exec events) while it waits, then lets it go on.
 * Seized, not PTRACE_TRACEME: the threads and processes it makes start
 * without the SIGSTOP a traced-me tracee's children get, which would stop
 * them for good if the recorder died before their first stop. */
int crec_seize_spawned(pid_t pid);

int crec_attach(pid_t pid);		/* PTRACE_SEIZE + INTERRUPT */
int crec_interrupt(pid_t pid);		/* PTRACE_INTERRUPT */
int crec_cont(pid_t pid, int sig);	/* PTRACE_CONT */
int crec_syscall_step(pid_t pid, int sig);	/* PTRACE_SYSCALL */
int crec_listen(pid_t pid);		/* PTRACE_LISTEN (a group-stop) */
int crec_detach(pid_t pid, int sig);
int crec_get_syscall(pid_t pid, struct crec_syscall *out);
long crec_event_msg(pid_t pid);

/* waitpid(-1, __WALL).  *kind: 0 exited, 1 killed by signal, 2 stopped.
 * *value: exit code, signal, or stop signal; *event: the PTRACE_EVENT_*
 * in the stop status (0 none); *syscall_stop: a syscall stop
 * (PTRACE_O_TRACESYSGOOD). */
pid_t crec_wait(int *kind, int *value, int *event, int *syscall_stop);

/* process_vm_readv of `len` bytes at `addr`; returns the bytes read. */
ssize_t crec_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* The PTRACE_EVENT_* numbers and the syscall numbers the recorder uses. */
enum {
	CREC_EVENT_FORK = 1, CREC_EVENT_VFORK = 2, CREC_EVENT_CLONE = 3, CREC_EVENT_EXEC = 4,
	CREC_EVENT_EXIT = 6, CREC_EVENT_SECCOMP = 7, CREC_EVENT_STOP = 128,
};
extern const int64_t crec_nr_ioctl, crec_nr_open, crec_nr_openat, crec_nr_close;

#endif
