import CRecord
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// Starting a recording: launching a program under the recorder, or
/// attaching to a running one; and the trace header for this host.
extension Recorder {
    /// The trace header for a recording on this host.
    public static func header(tool: String, pins: Bool = false) -> TraceHeader {
        let (release, node) = Posix.uname()
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return TraceHeader(kernelRelease: release, host: node, tool: tool, captureMode: pins ? "ptrace+kprobes" : "ptrace",
                           createdAt: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
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
        // The child waits to be seized before installing its filter and exec'ing.
        guard crec_seize_spawned(child) == 0 else {
            let e = errno
            kill(child, SIGKILL)
            throw RecordError.trace("\(argv[0]) could not be traced: \(String(cString: strerror(e)))")
        }
        tracees = [child]
        // The child hands its filter's listener to the guardian, then to
        // us, before it execs. None comes when it could not install the
        // filter (it exits 127).
        let listener = crec_spawn_listener()
        if listener >= 0 {
            let server = NotificationServer(listener: listener, received: crec_spawn_received())
            server.start()
            notifications = server
        }
        defer {
            if listener >= 0 { close(listener) }
            // Hands over to the guardian (normally nothing is left to answer).
            let handover = crec_spawn_handover()
            if handover >= 0 { close(handover) }
        }
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
}
