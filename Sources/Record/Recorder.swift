import CRecord
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Records a program's VFIO calls into a trace.
///
/// The program runs under ptrace with a seccomp-bpf filter installed before
/// its exec, so that it stops only for ioctls whose request type is VFIO's
/// `';'`; its open, openat and close go to a user-notification listener
/// (``NotificationServer``) that a guardian process takes over if the
/// recorder dies; every other syscall runs at full speed.
/// At a stop the recorder looks at what the fd is (`/proc/PID/fd`), decodes
/// the call by (fd kind, request) and reads its arguments from the tracee's
/// memory; it resumes the call to its exit, reads the outcome, and appends
/// one event. Threads, forks and execs are followed.
///
/// The trace writer closes a frame at least every 250 ms (a timer wakes the
/// loop when the tracee is idle), so a recorder killed at any moment leaves
/// every closed frame readable.
///
/// Each event is stamped with the time the call was entered. With a
/// `KernelPinTracer` (`--pins`) the kernel's pin, unpin and dma_rw events
/// are merged in by time: events wait in a small reorder buffer until
/// nothing earlier can still arrive (no call in flight entered before them,
/// the kernel's buffers read past them): normally within a tick, never more
/// than a second behind.
public final class Recorder {
    public struct Outcome: Sendable {
        /// The program's exit status, or 128 + signal.
        public var exitStatus: Int32
        public var events: UInt64
        /// Why the trace could not be written to the end (the program ran
        /// on unrecorded in launch mode; was detached in attach mode).
        public var writeFailure: String?
    }

    public enum RecordError: Error, CustomStringConvertible {
        case spawn(String, Int32)
        case trace(String)

        public var description: String {
            switch self {
            case .spawn(let p, let e): "cannot run \(p): \(String(cString: strerror(e)))"
            case .trace(let s): s
            }
        }
    }

    private let writer: TraceWriter
    private var seq: UInt64 = 0
    private var pending: [pid_t: PendingCall] = [:]
    /// When each pending call was entered: its event's time.
    private var pendingSince: [pid_t: UInt64] = [:]
    /// The kernel's pin events, when recording them (`--pins`).
    private let pins: KernelPinTracer?
    /// Events waiting to be merged in time order (with `pins` only).
    private var merge = EventMerge()
    /// When the kernel's buffers are next read: every 250 ms, whether the
    /// loop is woken by the ticker or busy with stops.
    private var nextMerge: UInt64 = 0
    /// Groups the program opened: kernel events of other groups (another
    /// program's devices) are left out.
    var openedGroups: Set<UInt32> = []
    /// Kernel events left out because their group is not the program's.
    public private(set) var otherGroupsEvents: UInt64 = 0
    var tracees: Set<pid_t> = []
    /// Decodes syscalls at entry (and knows the test device's fds).
    private var entries: SyscallEntry
    /// Closes seen entering, by fd number (any thread, any process), and
    /// those not yet returned: a failed call on an fd closed meanwhile is
    /// kept as a note.
    private var closesEntered: [Int32: UInt64] = [:]
    private var closesInFlight: [Int32: UInt64] = [:]
    /// The fd each thread is closing, between its close's entry and exit.
    private var closing: [pid_t: Int32] = [:]
    /// Attached to a running process: no seccomp filter, every syscall
    /// stops at entry and exit (PTRACE_SYSCALL).
    var stepping = false
    /// Threads stopped inside a syscall (stepping mode).
    private var inSyscall: Set<pid_t> = []
    /// Set by SIGINT/SIGTERM in attach mode: detach everything and stop.
    nonisolated(unsafe) static var detachRequested: Int32 = 0
    private var detaching = false
    /// Serves the program's opens and closes (launch mode; see
    /// ``NotificationServer``).
    var notifications: NotificationServer?
    /// The first error writing the trace: from then on nothing is decoded
    /// or written, and the program is left to run (or detached).
    private var writeFailure: String?

    public init(writer: TraceWriter, pins: KernelPinTracer? = nil) {
        self.writer = writer
        self.pins = pins
        entries = SyscallEntry(kernelPins: pins != nil)
    }

    /// Resumes a tracee: to its next syscall stop in stepping mode, else to
    /// its next filter stop.
    func resume(_ pid: pid_t, _ sig: Int32 = 0) {
        _ = stepping ? crec_syscall_step(pid, sig) : crec_cont(pid, sig)
    }

    func loop(main: pid_t) throws -> Outcome {
        RecorderClock.startTicker()
        defer { RecorderClock.stopTicker() }
        var exitStatus: Int32 = 0
        while !tracees.isEmpty {
            let stop = TraceeStop.next()
            // Opens and closes entered before this stop (each was answered,
            // so its thread could go on, after it was queued).
            applyNotified()
            switch stop {
            case .interrupted:
                writing { try mergeHeld(final: false); try writer.flushIfDue() }
                if Recorder.detachRequested != 0 { beginDetach() }
                continue
            case .noTracees:
                break
            default:
                if pins != nil, RecorderClock.now() >= nextMerge { writing { try mergeHeld(final: false) } }
            }
            guard let pid = stop.pid else { break }
            switch stop {
            case .exited(_, let status):
                // A call it was in leaves no event.
                forget(pid)
                if pid == main { exitStatus = status }
                continue
            case .killed(_, let signal):
                forget(pid)
                if pid == main { exitStatus = 128 + signal }
                continue
            default:
                break
            }
            if detaching {
                _ = crec_detach(pid, stop.signalToDeliverOnDetach)
                forget(pid)
                continue
            }
            handle(stop, pid)
        }
        notifications?.stop()
        applyNotified()
        if let pins {
            for k in pins.finish() { merge.hold(Event(time: k.time, tid: k.tid, k.body)) }
        }
        writing { try mergeHeld(final: true); try writer.close() }
        return Outcome(exitStatus: exitStatus, events: seq, writeFailure: writeFailure)
    }

    /// One stop of a live tracee: record what it finishes, resume it.
    /// Every tracee is seized (PTRACE_SEIZE), so a new thread or process
    /// starts with a PTRACE_EVENT_STOP, which may come before its parent's
    /// fork or clone event; a SIGSTOP is always a real one, for the tracee.
    private func handle(_ stop: TraceeStop, _ pid: pid_t) {
        tracees.insert(pid)
        switch stop {
        case .syscall where stepping:
            if inSyscall.remove(pid) == nil {
                inSyscall.insert(pid)
                enter(pid)
            } else {
                exit(pid)
            }
            resume(pid)
        case .seccomp:
            // Launch mode: a close this thread made before is over; step
            // the call to its exit only when it is recorded.
            closeReturned(pid)
            if enter(pid) { _ = crec_syscall_step(pid, 0) } else { _ = crec_cont(pid, 0) }
        case .syscall:
            // The exit of a call stopped at entry by the filter.
            exit(pid)
            _ = crec_cont(pid, 0)
        case .newChild(_, let child):
            tracees.insert(child)
            resume(pid)
        case .exec(_, let former):
            // A thread other than the leader that execs takes over the
            // leader's pid; its old id is gone without an exit report,
            // neither it nor the leader is in a VFIO call any more, and
            // the execve's exit stop will come under the leader's pid
            // (stepping must not take it for an entry).
            if former != pid {
                forget(former)
                pending[pid] = nil
                pendingSince[pid] = nil
                if stepping { inSyscall.insert(pid) }
            }
            resume(pid)
        case .groupStop:
            // Job control: stopped until a SIGCONT, as without the recorder.
            _ = crec_listen(pid)
        case .signal(_, let sig):
            // A signal for the tracee: deliver it.
            resume(pid, sig == SIGTRAP ? 0 : sig)
        default:
            // Exit and PTRACE_INTERRUPT events, a new tracee's first stop:
            // nothing to record.
            resume(pid)
        }
    }

    /// A syscall at entry: true when it will be recorded at its exit.
    @discardableResult
    private func enter(_ pid: pid_t) -> Bool {
        guard writeFailure == nil else { return false }
        var sc = crec_syscall()
        guard crec_get_syscall(pid, &sc) == 0 else { return false }
        // Counted for every close, decoded or not, before anything else:
        // the close is stopped here until resumed, so it cannot yet have
        // taken effect.
        let closed: Int32? = sc.nr == crec_nr_close ? Int32(truncatingIfNeeded: sc.args.0) : nil
        if let fd = closed { closesEntered[fd, default: 0] &+= 1 }
        guard let call = entries.decode(pid, sc, closes: { [unowned self] fd in self.closesEntered[fd] ?? 0 },
                                        closesInFlight: { closesInFlight[$0] ?? 0 }) else { return false }
        // A decoded close (of a VFIO fd) is stepped to its exit, so it is
        // known to be in flight until then; an undecoded one runs on at
        // once and cannot be what a VFIO call's fd was at that call's entry.
        if let fd = closed {
            closesInFlight[fd, default: 0] &+= 1
            closing[pid] = fd
        }
        pending[pid] = call
        pendingSince[pid] = RecorderClock.now()
        return true
    }

    /// A syscall at exit: its event, when it was entered as one.
    private func exit(_ pid: pid_t) {
        closeReturned(pid)
        var sc = crec_syscall()
        guard let call = pending.removeValue(forKey: pid), crec_get_syscall(pid, &sc) == 0,
              let body = call.finish(sc.ret, TraceeMemory(pid: pid)) else { return }
        writing { try record(body, tid: pid, since: pendingSince.removeValue(forKey: pid)) }
    }

    /// Records the opens and closes the notification thread saw, in the
    /// order they entered. A close is in flight from its entry to the next
    /// call of its thread the recorder sees (its return is not seen).
    private func applyNotified() {
        guard let n = notifications else { return }
        for call in n.drain() {
            closeReturned(call.tid)
            guard writeFailure == nil else { continue }
            switch call {
            case .close(let tid, let fd, let target, let time):
                closesEntered[fd, default: 0] &+= 1
                guard target != nil else { continue }
                closesInFlight[fd, default: 0] &+= 1
                closing[tid] = fd
                writing { try record(.close(Close(fd: fd, result: .ok(0))), tid: tid, since: time) }
            case .open(let tid, let path, let result, let time):
                writing { try record(.open(Open(path: path, result: result)), tid: tid, since: time) }
            case .unrecordedOpen(let tid, let path, let why, let time):
                writing { try record(.marker(Marker("open of \(path) not recorded: \(why)")), tid: tid, since: time) }
            }
        }
    }

    /// The close `pid` was in, if any, is over.
    private func closeReturned(_ pid: pid_t) {
        if let fd = closing.removeValue(forKey: pid) { closesInFlight[fd, default: 1] &-= 1 }
    }

    /// A thread that is gone (exited, killed, detached, replaced by exec).
    private func forget(_ pid: pid_t) {
        closeReturned(pid)
        tracees.remove(pid)
        pending[pid] = nil
        pendingSince[pid] = nil
        inSyscall.remove(pid)
    }

    /// Stops every thread; each is detached at its stop.
    private func beginDetach() {
        guard !detaching else { return }
        detaching = true
        for t in tracees { _ = crec_interrupt(t) }
    }

    /// Runs a step that writes the trace. Its failure (disk full, a file
    /// size limit) is the recorder's own trouble, never the program's: it
    /// is kept for the end, recording stops, and the program runs on (in
    /// launch mode its filter stops still need a tracer) or is detached.
    private func writing(_ step: () throws -> Void) {
        guard writeFailure == nil else { return }
        do { try step() } catch {
            writeFailure = "writing the trace failed after \(seq) events: \(error)"
            merge.drop()
            if stepping { beginDetach() }
        }
    }

    /// Reads the kernel's pin events and writes, in time order, every held
    /// event that nothing still unread can precede; `final` writes them all.
    private func mergeHeld(final: Bool) throws {
        guard let pins else { return }
        let ready: [Event]
        if final {
            ready = merge.releaseAll()
        } else {
            // The time before the read: what the kernel stamped before it
            // is in the buffers by now.
            let now = RecorderClock.now()
            for k in pins.drain() { merge.hold(Event(time: k.time, tid: k.tid, k.body)) }
            ready = merge.release(now: now, callsInFlightSince: pendingSince.values, oldestOpenKernelCall: pins.oldestOpenCall)
        }
        for e in ready { try emit(e) }
        nextMerge = RecorderClock.now() &+ 250_000_000
    }

    /// Writes one event in its final place, leaving out kernel events of
    /// groups the program never opened.
    private func emit(_ e: Event) throws {
        if case .open(let x) = e.body, let n = x.groupNumber, case .ok = x.result { openedGroups.insert(n) }
        if let g = e.body.kernelEventGroup, !openedGroups.contains(g) {
            otherGroupsEvents += 1
            return
        }
        var e = e
        e.seq = seq
        try writer.append(e)
        seq += 1
    }

    /// Appends an event, remembering which group a new device fd is in.
    private func record(_ body: EventBody, tid: pid_t, since: UInt64?) throws {
        entries.note(body, tid: tid)
        let e = Event(time: since ?? RecorderClock.now(), tid: UInt32(tid), body)
        guard pins != nil else { return try emit(e) }
        merge.hold(e)
        if merge.count >= merge.threshold { try mergeHeld(final: false) }
    }
}
