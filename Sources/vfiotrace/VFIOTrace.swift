import ArgumentParser
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The version printed by `--version` and written into trace headers.
let toolVersion = "vfiotrace 0.1.0"

@main
struct VFIOTrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vfiotrace",
        abstract: "Record, replay and check Linux VFIO type1 dirty-page tracking.",
        discussion: Help.flow("""
        Traces (.vft) hold the VFIO_IOMMU_DIRTY_PAGES / UNMAP_DMA / MAP_DMA ioctls a
        program made and the kernel's page-pin events, each with its inputs as passed
        and its outcome. Scenarios (.vfs) are the same events as text, one a line.

        Examples:
          vfiotrace compile corpora/basic-tracking.vfs -o basic.vft
          vfiotrace cat basic.vft --from 10 --count 5
          vfiotrace info basic.vft
          vfiotrace verify basic.vft && echo intact
          vfiotrace recover damaged.vft -o saved.vft
          vfiotrace conform                      # the rule catalogue on the engine
          vfiotrace conform --profile all        # rules x kernel behaviours
          vfiotrace replay corpora/basic-tracking.vfs --profile 5.10
          vfiotrace diff recorded-6.1.vft recorded-6.12.vft
          vfiotrace bisect corpora/pinned-scope.vfs   # which kernel changed it
          vfiotrace record -o qemu.vft -- qemu-system-x86_64 ...
          vfiotrace conform --client qemu.vft    # did the VMM ask what it needs?
          vfiotrace fuzz --against 5.10 --profile latest   # one profile vs another
          vfiotrace profiles --compare 5.10 5.12

        Exit codes: 0 success, 1 a check found a difference or damage, 2 bad input
        or trouble (the message names the file and byte offset).
        """),
        version: toolVersion,
        subcommands: [CompileCommand.self, CatCommand.self, InfoCommand.self, VerifyCommand.self, RecoverCommand.self,
                      ReplayCommand.self, DiffCommand.self, ProfilesCommand.self, ConformCommand.self,
                      BisectCommand.self, BisectCheckCommand.self, RecordCommand.self, FuzzCommand.self, HostCommand.self]
    )

    /// Runs the command line, mapping every kind of failure to the
    /// documented exit codes (argument-parser's usage code 64 becomes 2).
    static func main() {
        // A `git bisect run` step may only say 0 good, 1 bad or 125 skip.
        let bisectStep = CommandLine.arguments.dropFirst().first == "bisect-check"
        func exit(_ code: Int32) -> Never {
            if bisectStep && code != 0 && code != 1 {
                printError("bisect-check: could not decide here; skipping this commit (125)")
                Glibc.exit(125)
            }
            Glibc.exit(code)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let e as Failure {
            if !e.message.isEmpty { printError(e.message) }
            exit(e.code)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let msg = fullMessage(for: error)
            if !msg.isEmpty { printError(msg) }
            // ExitCode carries its own status (1 for findings, a recorded
            // program's status); anything else is trouble.
            if let ec = error as? ExitCode { exit(ec.rawValue) }
            exit(2)
        }
    }
}

/// An error with the exit code it should end the process with.
struct Failure: Error {
    var message: String
    var code: Int32

    /// Trouble: bad input, unreadable file (exit 2).
    static func trouble(_ m: String) -> Failure { Failure(message: m, code: 2) }
    /// A finding: damage, divergence (exit 1).
    static func finding(_ m: String) -> Failure { Failure(message: m, code: 1) }
}

func printError(_ s: String) {
    var s = s
    if !s.hasPrefix("vfiotrace:") && !s.hasPrefix("Error:") && !s.hasPrefix("Usage:") { s = "vfiotrace: " + s }
    if !s.hasSuffix("\n") { s += "\n" }
    _ = Array(s.utf8).withUnsafeBytes { Posix.writeAll(2, $0) }
}

/// Opens a trace, turning every failure into a one-line message naming the file.
func openTrace(_ path: String) throws -> TraceReader {
    do {
        return try TraceReader(path: path)
    } catch {
        throw Failure.trouble("\(path): \(error)")
    }
}

/// Writes standard output through a buffer: printing a large trace line by
/// line through `print` would dominate `cat`'s run time.
struct OutputBuffer {
    private var buf: [UInt8] = []
    /// Standard output, or standard error when standard output carries a
    /// trace (`-o -`).
    let fd: Int32

    init(fd: Int32 = 1) {
        self.fd = fd
        buf.reserveCapacity(1 << 16)
    }

    mutating func line(_ s: String) {
        buf.append(contentsOf: s.utf8)
        buf.append(10)
        if buf.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        // Reader went away (e.g. `| head`): stop quietly.
        if buf.withUnsafeBytes({ Posix.writeAll(fd, $0) }) != nil { Glibc.exit(0) }
        buf.removeAll(keepingCapacity: true)
    }
}
