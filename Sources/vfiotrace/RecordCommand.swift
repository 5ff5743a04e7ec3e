import ArgumentParser
import Record
import Trace
#if canImport(Glibc)
import Glibc
#endif

struct RecordCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a program and record its VFIO calls into a trace.",
        discussion: """
        The program runs under ptrace with a seccomp-bpf filter, so it stops only for
        ioctls with VFIO's request type and for open/openat/close; everything else runs
        at full speed. Each VFIO call is decoded by what its fd is (container, group,
        device) and recorded with its inputs as passed (pointers by class, bitmap
        buffers' prior contents) and its outcome (result, written-back fields, the
        bitmap the kernel wrote). Threads, forks and execs are followed. Ioctls on VFIO
        fds that vfiotrace does not decode are kept raw.

        The trace is written in frames closed at least every 250 ms: if the recorder or
        the program is killed, `vfiotrace verify` and `recover` show and keep everything
        up to the last closed frame.

        Examples:
          vfiotrace record -o qemu.vft -- qemu-system-x86_64 -device vfio-pci,host=0000:01:00.0 ...
          vfiotrace record -o t.vft -- vfiotrace replay corpora/basic-tracking.vfs --backend vfio --group /dev/vfio/1
          vfiotrace record -o running.vft --pid $(pidof qemu-system-x86_64)    # Ctrl-C to detach

        Exit code: the program's (128 + signal when it was killed); 2 when recording failed.
        """
    )

    @Option(name: .shortAndLong, help: "The trace to write.")
    var output: String

    @Option(help: "Attach to this running process (all its threads) instead of launching one; Ctrl-C detaches and leaves it running.")
    var pid: Int32?

    @Argument(parsing: .captureForPassthrough, help: "The program and its arguments (after --).")
    var command: [String] = []

    func validate() throws {
        let cmd = command.first == "--" ? Array(command.dropFirst()) : command
        if pid != nil && !cmd.isEmpty { throw ValidationError("give --pid or a command, not both") }
        guard pid != nil || !cmd.isEmpty else { throw ValidationError("nothing to run: vfiotrace record -o TRACE.vft -- CMD ARGS... (or --pid N)") }
    }

    func run() throws {
        let cmd = command.first == "--" ? Array(command.dropFirst()) : command
        let writer: TraceWriter
        do { writer = try TraceWriter(path: output, header: Recorder.header(tool: toolVersion)) } catch {
            throw Failure.trouble("\(output): \(error)")
        }
        if let pid {
            let outcome: Recorder.Outcome
            do { outcome = try Recorder(writer: writer).attach(pid) } catch {
                try? writer.close()
                throw Failure.trouble("record: \(error)")
            }
            printError("recorded \(outcome.events) events of process \(pid) into \(output)")
            return
        }
        // Ctrl-C reaches the program (same process group); the recorder waits
        // for it to finish and closes the trace.
        signal(SIGINT, SIG_IGN)
        let outcome: Recorder.Outcome
        do { outcome = try Recorder(writer: writer).run(cmd) } catch {
            try? writer.close()
            throw Failure.trouble("record: \(error)")
        }
        printError("recorded \(outcome.events) events into \(output); \(cmd[0]) exited \(outcome.exitStatus)")
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }
}
