/*
 * A test fixture for the recorder: thread-exec DELAY_MS PROGRAM ARGS...
 * Waits DELAY_MS, then starts a thread that execs PROGRAM while the main
 * thread (the leader) spins in user space, outside any syscall.  The exec
 * of a non-leader thread is the case where ptrace reports the execve's end
 * under the leader's pid and the thread's own id vanishes (ptrace(2),
 * "execve(2) under ptrace").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static char **program;
static atomic_int spinning;

static void *exec_program(void *unused)
{
	(void)unused;
	while (!atomic_load(&spinning))
		;
	usleep(100 * 1000);	/* let the leader settle into its loop */
	execv(program[0], program);
	_exit(127);
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc < 3)
		return 2;
	usleep((useconds_t)atoi(argv[1]) * 1000);
	program = argv + 2;
	if (pthread_create(&t, NULL, exec_program, NULL))
		return 3;
	atomic_store(&spinning, 1);
	for (;;)
		atomic_signal_fence(memory_order_seq_cst);
}
