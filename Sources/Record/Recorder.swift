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
public final class Recorder {
    public struct Outcome: Sendable {
        /// The program's exit status, or 128 + signal.
        public var exitStatus: Int32
        public var events: UInt64
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

    public init(writer: TraceWriter) {
        self.writer = writer
    }

    /// The trace header for a recording on this host.
    public static func header(tool: String) -> TraceHeader {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let node = withUnsafeBytes(of: &u.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return TraceHeader(kernelRelease: release, host: node, tool: tool, captureMode: "ptrace",
                           createdAt: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs `argv` to its end under the recorder.
    public func run(_ argv: [String]) throws -> Outcome {
        var err: Int32 = 0
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let child = crec_spawn(argv[0], &cargs, &err)
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
        guard let d = opendir("/proc/\(pid)/task") else { throw RecordError.trace("no process \(pid)") }
        var tids: [pid_t] = []
        while let ent = readdir(d) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let t = pid_t(name) { tids.append(t) }
        }
        closedir(d)
        for t in tids {
            guard crec_attach(t) == 0 else {
                let e = errno
                for a in tracees { _ = crec_detach(a, 0) }
                throw RecordError.trace("cannot attach to thread \(t) of \(pid): \(String(cString: strerror(e))) (root, or ptrace_scope?)")
            }
            tracees.insert(t)
        }
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
                    try writer.flushIfDue()
                    if Recorder.detachRequested != 0 && !detaching {
                        // Stop every thread; each is detached at its stop.
                        detaching = true
                        for t in tracees { _ = crec_interrupt(t) }
                    }
                    continue
                }
                break
            }
            switch kind {
            case 0, 1:
                // Exited, or killed: a call it was in leaves no event.
                tracees.remove(pid)
                pending[pid] = nil
                if pid == main { exitStatus = kind == 0 ? value : 128 + value }
                continue
            default:
                break
            }
            if detaching && kind == 2 {
                _ = crec_detach(pid, event == 0 && sysStop == 0 && value != SIGSTOP && value != SIGTRAP ? value : 0)
                tracees.remove(pid)
                pending[pid] = nil
                continue
            }
            if stepping && sysStop != 0 {
                var sc = crec_syscall()
                if inSyscall.remove(pid) == nil {
                    // Entry.
                    inSyscall.insert(pid)
                    if crec_get_syscall(pid, &sc) == 0, let call = entry(pid, sc) { pending[pid] = call }
                } else if let call = pending.removeValue(forKey: pid), crec_get_syscall(pid, &sc) == 0,
                          let body = call.finish(sc.ret, TraceeMemory(pid: pid)) {
                    try record(body, tid: pid)
                }
                resume(pid)
                continue
            }
            if event == Int32(CREC_EVENT_SECCOMP) {
                var sc = crec_syscall()
                if crec_get_syscall(pid, &sc) == 0, let call = entry(pid, sc) {
                    pending[pid] = call
                    _ = crec_syscall_step(pid, 0)
                } else {
                    _ = crec_cont(pid, 0)
                }
            } else if sysStop != 0 {
                // The exit of a call stopped at entry.
                var sc = crec_syscall()
                if let call = pending.removeValue(forKey: pid), crec_get_syscall(pid, &sc) == 0,
                   let body = call.finish(sc.ret, TraceeMemory(pid: pid)) {
                    try record(body, tid: pid)
                }
                _ = crec_cont(pid, 0)
            } else if event == Int32(CREC_EVENT_FORK) || event == Int32(CREC_EVENT_VFORK) || event == Int32(CREC_EVENT_CLONE) {
                let child = pid_t(crec_event_msg(pid))
                if !tracees.contains(child) { tracees.insert(child); fresh.insert(child) }
                resume(pid)
            } else if event != 0 {
                // exec, exit, PTRACE_INTERRUPT and group-stop events: nothing to record.
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
        try writer.close()
        return Outcome(exitStatus: exitStatus, events: seq)
    }

    /// Appends an event, remembering which group a new device fd is in.
    private func record(_ body: EventBody, tid: pid_t) throws {
        if case .groupGetDeviceFD(let x) = body, let dev = x.result?.value,
           let (_, group) = TraceeMemory(pid: tid).vfioKind(x.fd), let group {
            deviceGroup[Int32(truncatingIfNeeded: dev)] = group
        }
        try append(body, tid: tid)
    }

    private func append(_ body: EventBody, tid: pid_t) throws {
        try writer.append(Event(seq: seq, time: Self.now(), tid: UInt32(tid), body))
        seq += 1
    }

    /// A syscall stopped at entry by the filter: what to record at its exit.
    private func entry(_ pid: pid_t, _ sc: crec_syscall) -> PendingCall? {
        let mem = TraceeMemory(pid: pid)
        switch sc.nr {
        case crec_nr_ioctl:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            guard let (kind, group) = mem.vfioKind(fd) else { return nil }
            if kind == .device, let g = deviceGroup[fd],
               let call = IoctlDecoder.pinDevice(group: g, request: sc.args.1 & 0xffff_ffff, arg: sc.args.2, mem: mem) {
                return call
            }
            return IoctlDecoder.entry(fd: fd, kind: kind, group: group, request: sc.args.1 & 0xffff_ffff, arg: sc.args.2, mem: mem)
        case crec_nr_open, crec_nr_openat:
            let pathArg = sc.nr == crec_nr_open ? sc.args.0 : sc.args.1
            guard let path = mem.string(pathArg), path.hasPrefix("/dev/vfio/") else { return nil }
            return PendingCall { r, _ in .open(Open(path: path, result: callResult(r))) }
        case crec_nr_close:
            let fd = Int32(truncatingIfNeeded: sc.args.0)
            guard mem.vfioKind(fd) != nil else { return nil }
            return PendingCall { r, _ in .close(Close(fd: fd, result: callResult(r))) }
        default:
            return nil
        }
    }
}
