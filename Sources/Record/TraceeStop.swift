import CRecord
#if canImport(Glibc)
import Glibc
#endif

/// What `waitpid` reported about a tracee, decoded once from the status
/// word (see ptrace(2), "Stopped states").
enum TraceeStop: Equatable {
    /// The thread exited with a status.
    case exited(pid_t, status: Int32)
    /// The thread was killed by a signal.
    case killed(pid_t, signal: Int32)
    /// A seccomp filter stop: a syscall of interest at entry (launch mode).
    case seccomp(pid_t)
    /// A syscall stop (`PTRACE_SYSCALL`): entry or exit, as the tracer
    /// knows from its own bookkeeping.
    case syscall(pid_t)
    /// fork, vfork or clone: `child` is the new thread or process.
    case newChild(pid_t, child: pid_t)
    /// execve succeeded; `formerTID` is the thread that called it (a thread
    /// other than the leader takes over the leader's pid).
    case exec(pid_t, formerTID: pid_t)
    /// A group-stop (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU took effect): the
    /// tracee stays stopped until a SIGCONT (PTRACE_LISTEN).
    case groupStop(pid_t)
    /// Another ptrace event (exit, PTRACE_INTERRUPT, a new tracee's first stop).
    case otherEvent(pid_t)
    /// A signal-delivery stop: `signal` is for the tracee.
    case signal(pid_t, Int32)
    /// `waitpid` was interrupted (the recorder's 250 ms ticker).
    case interrupted
    /// No tracee left to wait for, or another `waitpid` error.
    case noTracees

    /// Waits for the next stop of any tracee.
    static func next() -> TraceeStop {
        var kind: Int32 = 0, value: Int32 = 0, event: Int32 = 0, sysStop: Int32 = 0
        let pid = crec_wait(&kind, &value, &event, &sysStop)
        guard pid >= 0 else { return errno == EINTR ? .interrupted : .noTracees }
        return decode(pid: pid, kind: kind, value: value, event: event, syscallStop: sysStop != 0)
    }

    /// The stop that `crec_wait`'s fields describe (kind 0 exited, 1
    /// killed, 2 stopped; `event` is the ptrace event in the status's
    /// high byte).
    static func decode(pid: pid_t, kind: Int32, value: Int32, event: Int32, syscallStop: Bool) -> TraceeStop {
        switch kind {
        case 0: return .exited(pid, status: value)
        case 1: return .killed(pid, signal: value)
        default: break
        }
        if syscallStop { return .syscall(pid) }
        switch event {
        case Int32(CREC_EVENT_SECCOMP): return .seccomp(pid)
        case Int32(CREC_EVENT_FORK), Int32(CREC_EVENT_VFORK), Int32(CREC_EVENT_CLONE):
            return .newChild(pid, child: pid_t(truncatingIfNeeded: crec_event_msg(pid)))
        case Int32(CREC_EVENT_EXEC): return .exec(pid, formerTID: pid_t(truncatingIfNeeded: crec_event_msg(pid)))
        case 0: return .signal(pid, value)
        case Int32(CREC_EVENT_STOP) where [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].contains(value): return .groupStop(pid)
        default: return .otherEvent(pid)
        }
    }

    /// The thread the stop is about (nil for `interrupted`, `noTracees`).
    var pid: pid_t? {
        switch self {
        case .exited(let p, _), .killed(let p, _), .seccomp(let p), .syscall(let p), .newChild(let p, _),
             .exec(let p, _), .groupStop(let p), .otherEvent(let p), .signal(let p, _): p
        case .interrupted, .noTracees: nil
        }
    }

    /// The signal to hand on when detaching at this stop: a signal meant
    /// for the tracee, never the tracer's own SIGSTOP or SIGTRAP.
    var signalToDeliverOnDetach: Int32 {
        if case .signal(_, let s) = self, s != SIGSTOP, s != SIGTRAP { return s }
        return 0
    }
}
