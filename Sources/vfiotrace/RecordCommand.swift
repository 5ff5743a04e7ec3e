import ArgumentParser
import Record
import Trace
#if canImport(Glibc)
import Glibc
#endif

struct RecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program and record its VFIO calls into a trace.",
        discussion: Help.flow("""
        The program runs under ptrace with a seccomp-bpf filter, so it stops
        only for ioctls with VFIO's request type; its opens and closes are
        served through a seccomp listener that a guardian process takes over
        if the recorder dies (then only VFIO ioctls fail, with ENOSYS);
        everything else runs at full speed. Each VFIO call is decoded by what
        its fd is (container, group, device) and recorded with its inputs as
        passed (pointers by class, bitmap buffers' prior contents) and its
        outcome (result, written-back fields, the bitmap the kernel wrote).
        Threads, forks and execs are followed. Ioctls on VFIO fds that
        vfiotrace does not decode are kept raw.

        --pins adds the kernel's side: every vfio_pin_pages, vfio_unpin_pages
        and vfio_dma_rw call a device of the program's groups makes (in any
        task, a vendor driver's kernel thread included), with its arguments
        and result, from kprobe events in a tracefs instance of its own,
        merged with the ioctls by time. The group comes from the kernel's
        BTF. Events the kernel's buffer drops become loss records (`vfiotrace
        info` counts them). Needs root, tracefs, kprobe events, BTF and a
        5.8+ kernel (before 6.0 the functions take pfn arrays and dma_rw a
        group; both are read). With --pins, the vfiotrace_pin test device's own
        requests are kept raw: the kernel's events stand for them.

        Frames are closed at least every 250 ms: if the recorder or the
        program is killed, `vfiotrace verify` and `recover` show and keep
        everything up to the last closed frame (with --pins, events still
        being merged, at most the last second, are lost too). A recorder
        killed with --pins leaves its probes defined; the next one removes
        them.

        Launch mode installs a seccomp filter that outlives the recorder: if
        the recorder is killed, the program's VFIO ioctls, opens and closes
        fail with ENOSYS from then on. To record a VM that must survive
        whatever happens to the recorder, attach with --pid instead.

        Examples:
          vfiotrace record -o qemu.vft -- \\
              qemu-system-x86_64 -device vfio-pci,host=0000:01:00.0 ...
          vfiotrace record -o t.vft -- vfiotrace replay \\
              corpora/basic-tracking.vfs --backend vfio --group /dev/vfio/1
          vfiotrace record -o running.vft --pid $(pidof qemu-system-x86_64)
          vfiotrace record --pins -o mdev.vft -- ./my-mdev-test

        Exit code: the program's (128 + signal when it was killed); 2 when
        recording failed.
        """)
    )

    @Option(name: .shortAndLong, help: "The trace to write.")
    var output: String

    @Option(parsing: .unconditional, help: "Attach to this running process (all its threads) instead of launching one; Ctrl-C detaches and leaves it running.")
    var pid: Int32?

    @Flag(help: "Also record the kernel's vfio_pin_pages/vfio_unpin_pages/vfio_dma_rw calls (kprobes; root, 6.0+).")
    var pins = false

    @Option(parsing: .unconditional, help: "With --pins: the kernel's trace buffer per CPU in KiB; raise it when the trace has loss records.")
    var pinsBufferKb: Int = 4096

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func validate() throws {
        let cmd = command.first == "--" ? Array(command.dropFirst()) : command
        if pid != nil && !cmd.isEmpty { throw ValidationError("give --pid or a command, not both") }
        // The program writes to the same standard output.
        if output == "-" { throw ValidationError("-o -: the recorded program shares standard output; name a file (it is written as the program runs, so a killed recording is still readable)") }
        guard pinsBufferKb >= 1 && pinsBufferKb <= 1 << 20 else { throw ValidationError("--pins-buffer-kb \(pinsBufferKb): give 1 to 1048576 (KiB per CPU)") }
        guard pid != nil || !cmd.isEmpty else { throw ValidationError("nothing to run: vfiotrace record -o TRACE.vft -- CMD ARGS... (or --pid N)") }
    }

    func run() throws {
        let cmd = command.first == "--" ? Array(command.dropFirst()) : command
        // A program that cannot be run is said before any trace is written.
        // As env(1) and timeout(1) do: 127 when not found, 126 when not executable.
        if pid == nil, let why = Self.whyNotRunnable(cmd[0]) {
            throw Failure(message: "record: \(cmd[0]): \(why); nothing recorded", code: why == "not an executable file" ? 126 : 127)
        }
        var tracer: KernelPinTracer? = nil
        if pins {
            do { tracer = try KernelPinTracer(bufferKB: pinsBufferKb) } catch { throw Failure.trouble("record: \(error)") }
        }
        let writer: TraceWriter
        do { writer = try TraceWriter(path: output, header: Recorder.header(tool: toolVersion, pins: pins)) } catch {
            throw Failure.trouble("\(output): \(error)")
        }
        let recorder = Recorder(writer: writer, pins: tracer)
        // A file size limit makes a write fail (EFBIG), which the recorder
        // survives, instead of killing it. Launched, Ctrl-C reaches the
        // program (same process group) and the recorder waits for it to
        // finish; attached, Ctrl-C detaches (the recorder's own handler).
        // A launched program gets both signals back as they were.
        var reset: [Int32] = []
        for sig in pid == nil ? [SIGINT, SIGXFSZ] : [SIGXFSZ] where Recorder.ignoreInRecorder(sig) { reset.append(sig) }
        let outcome: Recorder.Outcome
        do {
            outcome = try pid.map { try recorder.attach($0) } ?? recorder.run(cmd, resetSignals: reset)
        } catch {
            try? writer.close()
            throw Failure.trouble("record: \(error)")
        }
        if let tracer {
            var s = "kernel: \(tracer.eventsRead) probe hits read"
            if recorder.otherGroupsEvents > 0 { s += ", \(recorder.otherGroupsEvents) events of groups the program did not open left out" }
            printError(s)
        }
        if let pid {
            if let why = outcome.writeFailure {
                throw Failure.trouble("record: \(output): \(why); detached from process \(pid), which runs on")
            }
            printError("recorded \(outcome.events) events of process \(pid) into \(output)")
            return
        }
        if let why = outcome.writeFailure {
            throw Failure.trouble("record: \(output): \(why); \(cmd[0]) ran on unrecorded and exited \(outcome.exitStatus)")
        }
        printError("recorded \(outcome.events) events into \(output); \(cmd[0]) exited \(outcome.exitStatus)")
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }

    /// Why `execvp` would fail for `name`: not found (a path, or no such
    /// program on PATH), or not executable; nil when it can run.
    static func whyNotRunnable(_ name: String) -> String? {
        func executable(_ path: String) -> Bool {
            var st = stat()
            return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
        }
        if name.contains("/") {
            var st = stat()
            guard stat(name, &st) == 0 else { return "no such file" }
            return executable(name) ? nil : "not an executable file"
        }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
            if executable((dir.isEmpty ? "." : String(dir)) + "/" + name) { return nil }
        }
        return "command not found on PATH"
    }
}
