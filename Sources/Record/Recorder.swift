import CRecord
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Records a program's VFIO calls into a trace.
///
/// The program runs under ptrace with a seccomp-bpf filter installed before
/// its exec, so that it stops only for ioctls whose request type is VFIO's
/// `';'` and for open/openat/close; every other syscall runs at full speed.
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
    /// Events waiting to be merged in time order (with `pins` only), with
    /// their arrival order to keep ties stable.
    private var held: [(event: Event, order: UInt64)] = []
    private var arrivals: UInt64 = 0
    /// When the kernel's buffers are next read: every 250 ms, whether the
    /// loop is woken by the ticker or busy with stops.
    private var nextMerge: UInt64 = 0
    /// How many held events make a merge happen before its time (doubles
    /// while a call in flight keeps them from being written).
    private var mergeThreshold = 4096
    /// Groups the program opened: kernel events of other groups (another
    /// program's devices) are left out.
    private var openedGroups: Set<UInt32> = []
    /// Kernel events left out because their group is not the program's.
    public private(set) var otherGroupsEvents: UInt64 = 0
    private var tracees: Set<pid_t> = []
    /// Threads whose first stop (the automatic attach) is still to come.
    private var fresh: Set<pid_t> = []
    /// Device fds from GET_DEVICE_FD → the group number they belong to, so
    /// that the vfiotrace_pin test device's requests become pin events.
    private var deviceGroup: [Int32: UInt32] = [:]
    /// Attached to a running process: no seccomp filter, every syscall
    /// stops at entry and exit (PTRACE_SYSCALL).
    private var stepping = false
    /// Threads stopped inside a syscall (stepping mode).
    private var inSyscall: Set<pid_t> = []
    /// Set by SIGINT/SIGTERM in attach mode: detach everything and stop.
    nonisolated(unsafe) static var detachRequested: Int32 = 0
    private var detaching = false
    /// The first error writing the trace: from then on nothing is decoded
    /// or written, and the program is left to run (or detached).
    private var writeFailure: String?

    public init(writer: TraceWriter, pins: KernelPinTracer? = nil) {
        self.writer = writer
        self.pins = pins
    }

    /// The trace header for a recording on this host.
    public static func header(tool: String, pins: Bool = false) -> TraceHeader {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let node = withUnsafeBytes(of: &u.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return TraceHeader(kernelRelease: release, host: node, tool: tool, captureMode: pins ? "ptrace+kprobes" : "ptrace",
                           createdAt: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Ignores `sig` in the recorder; true when it was not ignored before,
    /// so that `run(_:resetSignals:)` should give it back to the program.
    public static func ignoreInRecorder(_ sig: Int32) -> Bool {
        crec_ignore_signal(sig) == 0
    }

    /// Runs `argv` to its end under the recorder. `resetSignals`: signals
    /// the recorder ignores for itself that the program gets back at their
    /// default.
    public func run(_ argv: [String], resetSignals: [Int32] = []) throws -> Outcome {
        var err: Int32 = 0
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let child = crec_spawn(argv[0], &cargs, resetSignals, Int32(resetSignals.count), &err)
        guard child > 0 else { throw RecordError.spawn(argv[0], err) }
        var kind: Int32 = 0, value: Int32 = 0, event: Int32 = 0, sysStop: Int32 = 0
        // The child stops itself before installing its filter and exec'ing.
        guard crec_wait(&kind, &value, &event, &sysStop) == child, kind == 2 else {
            throw RecordError.trace("\(argv[0]) did not stop for the tracer")
        }
        guard crec_set_options(child, 1) == 0 else { throw RecordError.trace("PTRACE_SETOPTIONS: \(String(cString: strerror(errno)))") }
        tracees = [child]
        _ = crec_cont(child, 0)
        return try loop(main: child)
    }

    /// Attaches to every thread of running process `pid` and records until
    /// it exits or SIGINT/SIGTERM asks the recorder to detach, leaving the
    /// process running. Without a seccomp filter (it cannot be added to a
    /// running process) every syscall of the tracee stops twice.
    public func attach(_ pid: pid_t) throws -> Outcome {
        stepping = true
        guard let names = directoryEntries("/proc/\(pid)/task") else { throw RecordError.trace("no process \(pid)") }
        let tids = names.compactMap { pid_t($0) }
        for t in tids {
            guard crec_attach(t) == 0 else {
                let e = errno
                for a in tracees { _ = crec_detach(a, 0) }
                throw RecordError.trace("cannot attach to thread \(t) of \(pid): \(String(cString: strerror(e))) (root, or ptrace_scope?)")
            }
            tracees.insert(t)
        }
        openedGroups = TraceeMemory(pid: pid).openGroups()
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in Recorder.detachRequested = 1 }
        sigemptyset(&sa.sa_mask)
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
        // A parent may have started us with these blocked.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        return try loop(main: pid)
    }

    /// Resumes a tracee: to its next syscall stop in stepping mode, else to
    /// its next filter stop.
    private func resume(_ pid: pid_t, _ sig: Int32 = 0) {
        _ = stepping ? crec_syscall_step(pid, sig) : crec_cont(pid, sig)
    }

    /// Wakes `waitpid` every 250 ms so that the writer can close a frame
    /// while the tracee is idle.
    private func startTicker() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0 // no SA_RESTART: waitpid returns EINTR
        sigaction(SIGALRM, &sa, nil)
        // A parent may have started us with SIGALRM blocked.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGALRM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        var t = itimerval(it_interval: timeval(tv_sec: 0, tv_usec: 250_000), it_value: timeval(tv_sec: 0, tv_usec: 250_000))
        setitimer(Int32(ITIMER_REAL.rawValue), &t, nil)
    }

    private func stopTicker() {
        var t = itimerval()
        setitimer(Int32(ITIMER_REAL.rawValue), &t, nil)
    }

    private func loop(main: pid_t) throws -> Outcome {
        startTicker()
        defer { stopTicker() }
        var exitStatus: Int32 = 0
        while !tracees.isEmpty {
            var kind: Int32 = 0, value: Int32 = 0, event: Int32 = 0, sysStop: Int32 = 0
            let pid = crec_wait(&kind, &value, &event, &sysStop)
            if pid < 0 {
                if errno == EINTR {
                    writing { try mergeHeld(final: false); try writer.flushIfDue() }
                    if Recorder.detachRequested != 0 { beginDetach() }
                    continue
                }
                break
            }
            if pins != nil, Self.now() >= nextMerge { writing { try mergeHeld(final: false) } }
            switch kind {
            case 0, 1:
                // Exited, or killed: a call it was in leaves no event.
                tracees.remove(pid)
                pending[pid] = nil
                pendingSince[pid] = nil
                inSyscall.remove(pid)
                if pid == main { exitStatus = kind == 0 ? value : 128 + value }
                continue
            default:
                break
            }
            if detaching && kind == 2 {
                _ = crec_detach(pid, event == 0 && sysStop == 0 && value != SIGSTOP && value != SIGTRAP ? value : 0)
                tracees.remove(pid)
                pending[pid] = nil
                pendingSince[pid] = nil
                inSyscall.remove(pid)
                continue
            }
            if stepping && sysStop != 0 {
                var sc = crec_syscall()
                if inSyscall.remove(pid) == nil {
                    // Entry.
                    inSyscall.insert(pid)
                    if crec_get_syscall(pid, &sc) == 0, let call = entry(pid, sc) { pending[pid] = call; pendingSince[pid] = Self.now() }
                } else if let call = pending.removeValue(forKey: pid), crec_get_syscall(pid, &sc) == 0,
                          let body = call.finish(sc.ret, TraceeMemory(pid: pid)) {
                    writing { try record(body, tid: pid, since: pendingSince.removeValue(forKey: pid)) }
                }
                resume(pid)
                continue
            }
            if event == Int32(CREC_EVENT_SECCOMP) {
                var sc = crec_syscall()
                if crec_get_syscall(pid, &sc) == 0, let call = entry(pid, sc) {
                    pending[pid] = call
                    pendingSince[pid] = Self.now()
                    _ = crec_syscall_step(pid, 0)
                } else {
                    _ = crec_cont(pid, 0)
                }
            } else if sysStop != 0 {
                // The exit of a call stopped at entry.
                var sc = crec_syscall()
                if let call = pending.removeValue(forKey: pid), crec_get_syscall(pid, &sc) == 0,
                   let body = call.finish(sc.ret, TraceeMemory(pid: pid)) {
                    writing { try record(body, tid: pid, since: pendingSince.removeValue(forKey: pid)) }
                }
                _ = crec_cont(pid, 0)
            } else if event == Int32(CREC_EVENT_FORK) || event == Int32(CREC_EVENT_VFORK) || event == Int32(CREC_EVENT_CLONE) {
                let child = pid_t(crec_event_msg(pid))
                if !tracees.contains(child) { tracees.insert(child); fresh.insert(child) }
                resume(pid)
            } else if event == Int32(CREC_EVENT_EXEC) {
                // A thread other than the leader that execs takes over the
                // leader's pid; its old id is gone without an exit report,
                // neither it nor the leader is in a VFIO call any more, and
                // the execve's exit stop will come under the leader's pid
                // (stepping must not take it for an entry).
                let former = pid_t(crec_event_msg(pid))
                if former != pid {
                    tracees.remove(former)
                    fresh.remove(former)
                    for t in [former, pid] { pending[t] = nil; pendingSince[t] = nil }
                    inSyscall.remove(former)
                    if stepping { inSyscall.insert(pid) }
                }
                resume(pid)
            } else if event != 0 {
                // exit, PTRACE_INTERRUPT and group-stop events: nothing to record.
                resume(pid)
            } else if value == SIGSTOP && (fresh.contains(pid) || !tracees.contains(pid)) {
                // A new thread or process's first stop.
                fresh.remove(pid)
                tracees.insert(pid)
                resume(pid)
            } else {
                // A signal for the tracee: deliver it.
                resume(pid, value == SIGTRAP ? 0 : value)
            }
        }
        if let pins {
            for k in pins.finish() { hold(Event(time: k.time, tid: k.tid, k.body)) }
        }
        writing { try mergeHeld(final: true); try writer.close() }
        return Outcome(exitStatus: exitStatus, events: seq, writeFailure: writeFailure)
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
            held = []
            if stepping { beginDetach() }
        }
    }

    private func hold(_ e: Event) {
        held.append((e, arrivals))
        arrivals += 1
    }

    /// Reads the kernel's pin events and writes, in time order, every held
    /// event that nothing still unread can precede; `final` writes them all.
    private func mergeHeld(final: Bool) throws {
        guard let pins else { return }
        var watermark = UInt64.max
        if !final {
            // A kernel event is in its buffer within microseconds of its
            // timestamp; 2 ms of margin covers a probe still being written.
            let now = Self.now()
            watermark = now &- 2_000_000
            for k in pins.drain() { hold(Event(time: k.time, tid: k.tid, k.body)) }
            // Calls in flight hold back what came after them, but for a
            // second at most: a call that blocks longer (or a kernel call
            // whose return was lost) must not hold every other event in
            // memory. Its event is then written when it ends, after events
            // stamped later (times are signed deltas in the trace).
            let patience: UInt64 = 1_000_000_000
            for t in pendingSince.values where now &- t < patience { watermark = min(watermark, t) }
            if let t = pins.oldestOpenCall, now &- t < patience { watermark = min(watermark, t) }
        }
        held.sort { ($0.event.time, $0.order) < ($1.event.time, $1.order) }
        let ready = final ? held.count : held.firstIndex { $0.event.time >= watermark } ?? held.count
        for (e, _) in held[0..<ready] { try emit(e) }
        held.removeFirst(ready)
        nextMerge = Self.now() &+ 250_000_000
        mergeThreshold = max(4096, held.count * 2)
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
        if case .groupGetDeviceFD(let x) = body, let dev = x.result?.value,
           let (_, group) = TraceeMemory(pid: tid).vfioKind(x.fd), let group {
            deviceGroup[Int32(truncatingIfNeeded: dev)] = group
        }
        let e = Event(time: since ?? Self.now(), tid: UInt32(tid), body)
        guard pins != nil else { return try emit(e) }
        hold(e)
        if held.count >= mergeThreshold { try mergeHeld(final: false) }
    }

    /// A syscall stopped at entry by the filter: what to record at its exit.
    private func entry(_ pid: pid_t, _ sc: crec_syscall) -> PendingCall? {
        guard writeFailure == nil else { return nil }
        let mem = TraceeMemory(pid: pid)
        switch sc.nr {
        case crec_nr_ioctl:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            let request = sc.args.1 & 0xffff_ffff
            guard let target = mem.fdTarget(fd), let (kind, group) = TraceeMemory.vfioKind(ofTarget: target) else { return nil }
            if kind == .device, pins == nil, let g = deviceGroup[fd],
               let call = IoctlDecoder.pinDevice(group: g, request: request, arg: sc.args.2, mem: mem) {
                return Self.unlessReplaced(call, fd: fd, target: target, what: "ioctl 0x\(String(request, radix: 16))")
            }
            let call = IoctlDecoder.entry(fd: fd, kind: kind, group: group, request: request, arg: sc.args.2, mem: mem)
            return Self.unlessReplaced(call, fd: fd, target: target, what: "ioctl 0x\(String(request, radix: 16))")
        case crec_nr_open, crec_nr_openat:
            let pathArg = sc.nr == crec_nr_open ? sc.args.0 : sc.args.1
            guard let path = mem.string(pathArg), path.hasPrefix("/dev/vfio/") else { return nil }
            return PendingCall { r, _ in .open(Open(path: path, result: callResult(r))) }
        case crec_nr_close:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            guard let target = mem.fdTarget(fd), TraceeMemory.vfioKind(ofTarget: target) != nil else { return nil }
            let call = PendingCall { r, _ in .close(Close(fd: fd, result: callResult(r))) }
            return Self.unlessReplaced(call, fd: fd, target: target, what: "close")
        default:
            return nil
        }
    }

    /// The fd is classified when the call stops at entry, but another
    /// thread can close it and open something else under its number
    /// before the kernel looks it up: the call then reaches the other
    /// file (ENOTTY from /dev/null) or none (EBADF). When a call fails and
    /// its fd no longer names the file it named at entry, the kernel may
    /// have used either, so the call is kept as a marker, not as a VFIO
    /// event a replay would hold against VFIO. (Successful calls are not
    /// checked: that would cost a readlink per call, and a VFIO request
    /// succeeding on a file that replaced a VFIO fd is not a case seen.)
    static func unlessReplaced(_ call: PendingCall, fd: Int32, target: String, what: String) -> PendingCall {
        PendingCall { ret, mem in
            guard ret < 0, ret >= -4095 else { return call.finish(ret, mem) }
            let now = mem.fdTarget(fd)
            guard now != target else { return call.finish(ret, mem) }
            return .marker(Marker("\(what) on fd \(fd) -> \(ErrnoName.name(Int32(-ret))): fd \(fd) was \(now.map { "reused for \($0)" } ?? "closed") during the call (it was \(target) at entry); the kernel may have used either file, so the call is kept as this note"))
        }
    }
}

extension EventBody {
    /// The group of a kernel-side event (pin, unpin, dma_rw); nil for calls.
    var kernelEventGroup: UInt32? {
        switch self {
        case .pin(let x): x.group
        case .unpin(let x): x.group
        case .dmaRW(let x): x.group
        default: nil
        }
    }
}
