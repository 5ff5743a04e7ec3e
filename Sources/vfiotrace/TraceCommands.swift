import ArgumentParser
import Trace
#if canImport(Glibc)
import Glibc
#endif

struct CompileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compile",
        abstract: "Compile a text scenario (.vfs) or `cat` output into a binary trace (.vft).",
        discussion: Help.flow("""
        The output is deterministic: the same text always gives the same bytes
        (the header's creation time is taken from a `!created` line, never the clock).

        Examples:
          vfiotrace compile corpora/basic-tracking.vfs -o basic.vft
          vfiotrace cat recorded.vft > edit.vfs
          vfiotrace compile edit.vfs -o edited.vft
        """)
    )

    @Argument(help: "The text file to compile ('-' reads standard input).", completion: .file(extensions: ["vfs"]))
    var scenario: String

    @Option(name: .shortAndLong, help: "The trace file to write (`-`: standard output).")
    var output: String

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        // Events go to the writer as they are parsed; the writer opens at the
        // first event, once the !header lines before it are known.
        let input = try openInput(scenario)
        guard input.format == .text else {
            throw Failure.trouble("\(scenario): already a binary trace (`vfiotrace cat` prints its text form)")
        }
        var events = try inputEvents(input)
        // Written beside the target and renamed at the end: a syntax error
        // leaves whatever -o named as it was.
        let out = try beginOutput(output, inputs: [scenario])
        var writer: TraceWriter? = nil
        func open(_ header: TraceHeader) throws -> TraceWriter {
            if let writer { return writer }
            var h = header
            if h.tool.isEmpty { h.tool = toolVersion }
            do { writer = try TraceWriter(output: out, header: h) } catch { throw Failure.trouble("\(out.name): \(error)") }
            return writer!
        }
        var progress = progressOptions.meter("compile", total: nil)
        defer { progress.finish() }
        var done: UInt64 = 0
        do {
            while let event = try nextEvent(&events) {
                let w = try open(input.header)
                do { try w.append(event) } catch { throw Failure.trouble("\(out.name): \(error)") }
                done += 1
                progress.update(done)
            }
            progress.finish()
            do { try open(input.header).close() } catch let f as Failure { throw f } catch { throw Failure.trouble("\(out.name): \(error)") }
            try commitOutput(out)
        } catch {
            out.abandon()
            throw error
        }
    }
}

/// Opens a trace and walks all of it, with a progress line over the
/// events its index announces.
func scanTrace(_ path: String, label: String, progress options: ProgressOptions) throws -> (TraceReader, TraceScan) {
    let r = try openTrace(path)
    var progress = options.meter(label, total: r.storedIndex?.eventCount)
    defer { progress.finish() }
    var done: UInt64 = 0
    do {
        return (r, try TraceScan.run(r, eachEvent: { _ in done += 1; progress.update(done) }))
    } catch {
        throw Failure.trouble("\(path): \(error)")
    }
}

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Print a trace in the text form, one event a line.",
        discussion: Help.flow("""
        `compile` of this output gives back the same events. --from uses the trace's
        seek index, so it decompresses only the frames it prints.

        Examples:
          vfiotrace cat trace.vft
          vfiotrace cat trace.vft --from 1000 --count 20
          vfiotrace cat trace.vft --no-header | grep dirty
        """)
    )

    @Argument(help: "The trace to print.", completion: .file(extensions: ["vft"]))
    var trace: String

    // Signed, so that a negative value gets a message of ours rather than
    // the parser's "invalid value".
    @Option(name: .customLong("from"), parsing: .unconditional, help: "First event to print (0-based position in the trace).")
    var fromArgument: Int64 = 0

    @Option(name: .customLong("count"), parsing: .unconditional, help: "How many events to print (default: all).")
    var countArgument: Int64?

    @Flag(help: "Leave out the !header lines.")
    var noHeader = false

    @OptionGroup var progressOptions: ProgressOptions

    var from: UInt64 { UInt64(fromArgument) }
    var count: UInt64? { countArgument.map { UInt64($0) } }

    func validate() throws {
        if fromArgument < 0 {
            throw ValidationError("--from \(fromArgument): events are numbered from 0; `vfiotrace info` says how many the trace holds")
        }
        if let c = countArgument, c < 0 { throw ValidationError("--count \(c): give 0 or more events (leave it out for all)") }
    }

    func run() throws {
        let r = try openTrace(trace)
        var out = OutputBuffer()
        if !noHeader { for l in TextPrinter.headerLines(r.header) { out.line(l) } }
        var printer = TextPrinter()
        var printed: UInt64 = 0
        let limit = count ?? .max
        if limit == 0 { out.flush(); return }
        var events: TraceEvents
        do { events = try r.events(from: from) } catch { throw Failure.trouble("\(trace): \(error)") }
        let announced = r.storedIndex.map { min($0.eventCount - min(from, $0.eventCount), limit) }
        var progress = progressOptions.meter("cat", total: announced)
        do {
            while printed < limit, let e = try events.next() {
                out.line(printer.line(for: e))
                printed += 1
                progress.update(printed)
            }
        } catch {
            progress.finish()
            out.flush()
            throw Failure.trouble("\(trace): \(error)")
        }
        progress.finish()
        out.flush()
        if let p = events.problems.first {
            throw Failure.trouble("\(trace): \(p) (printed the \(printed) events before and after it; `vfiotrace verify` for details)")
        }
    }
}

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show a trace's header, event counts per type, frames and compression.",
        discussion: "Example:\n  vfiotrace info trace.vft"
    )

    @Argument(help: "The trace to describe.", completion: .file(extensions: ["vft"]))
    var trace: String

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        let (r, s) = try scanTrace(trace, label: "info", progress: progressOptions)
        let h = r.header
        var out = OutputBuffer()
        out.line("file:          \(trace) (\(s.fileSize) bytes)")
        out.line("format:        \(h.formatMajor).\(h.formatMinor), little-endian, page size \(h.pageSize)")
        // Header strings are the trace's: shown escaped, never raw.
        let shown = TextSyntax.headerValue
        out.line("kernel:        \(h.kernelRelease.isEmpty ? "(none: not recorded on a kernel)" : shown(h.kernelRelease))")
        if !h.host.isEmpty { out.line("host:          \(shown(h.host))") }
        out.line("written by:    \(h.tool.isEmpty ? "(unknown)" : shown(h.tool))")
        out.line("capture mode:  \(h.captureMode.isEmpty ? "(unknown)" : shown(h.captureMode))")
        out.line("events:        \(s.events)")
        for (name, n) in s.countsByType.sorted(by: { $0.key < $1.key }) {
            out.line("  " + name + String(repeating: " ", count: max(1, 23 - name.count)) + "\(n)")
        }
        if let a = s.firstTime, let b = s.lastTime, b >= a {
            out.line("time span:     \(TextSyntax.time(b - a).dropFirst()) s")
        }
        out.line("frames:        \(s.frames)")
        let raw = r.storedIndex.map { $0.entries.reduce(0) { $0 + Int($1.contentSize) } }
        if let raw, s.compressedBytes > 0 {
            let ratio = Double(raw) / Double(s.compressedBytes)
            out.line("compression:   \(raw) record bytes in \(s.compressedBytes) compressed (\(String(format1: ratio))x)")
        } else {
            out.line("compressed:    \(s.compressedBytes) bytes in frames")
        }
        if s.events > 0 {
            out.line("per event:     \(String(format1: Double(s.compressedBytes) / Double(s.events))) bytes compressed")
        }
        if s.unknownRecords > 0 { out.line("unknown:       \(s.unknownRecords) records of newer types skipped") }
        switch s.index {
        case .intact: out.line("seek index:    present, \(r.storedIndex!.entries.count) frames")
        case .missing: out.line("seek index:    missing (writer did not close the file; rebuilt by scanning)")
        case .mismatch(let why): out.line("seek index:    does not match the file: \(why)")
        }
        if let summary = s.lossSummary { out.line("loss records:  \(summary)") }
        if s.problems.isEmpty {
            out.line("state:         intact")
        } else {
            out.line("state:         damaged: \(s.problems.count) problem(s), \(s.damagedBytes) bytes unreadable (see `vfiotrace verify`)")
        }
        out.flush()
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a trace end to end: header, every frame's checksums, records and the seek index.",
        discussion: Help.flow("""
        Exit 0: intact. Exit 1: damaged or incomplete (each problem is printed with
        its offset and how much is lost; `vfiotrace recover` keeps the rest).
        Exit 2: not readable as a trace at all.

        Example:
          vfiotrace verify trace.vft || vfiotrace recover trace.vft -o fixed.vft
        """)
    )

    @Argument(help: "The trace to check.", completion: .file(extensions: ["vft"]))
    var trace: String

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        let (_, s) = try scanTrace(trace, label: "verify", progress: progressOptions)
        var out = OutputBuffer()
        for p in s.problems { out.line("\(trace): \(p)") }
        switch s.index {
        case .intact: break
        case .missing: out.line("\(trace): incomplete: no seek index at the end (the writer was stopped before closing)")
        case .mismatch(let why): out.line("\(trace): seek index does not match: \(why)")
        }
        for (seq, l) in s.losses.listed {
            out.line("\(trace): event \(seq) is a loss record: \(l.count > 0 ? "\(l.count) events lost" : "events lost, count unknown"): \(TextSyntax.headerValue(l.reason))")
        }
        if s.losses.count > s.losses.listed.count {
            out.line("\(trace): … and \(s.losses.count - s.losses.listed.count) more loss records")
        }
        if s.isIntact {
            let losses = s.lossSummary.map { "; \($0)" } ?? ""
            out.line("\(trace): intact: \(s.events) events in \(s.frames) frames\(losses)")
            out.flush()
            return
        }
        let lost = s.knownLostEvents > 0 ? "\(s.knownLostEvents) events known lost" : "lost events unknown (no index to count them)"
        out.line("\(trace): \(s.events) events readable in \(s.frames) frames; \(s.damagedBytes) bytes unreadable; \(s.problems.isEmpty ? "nothing lost" : lost)")
        out.flush()
        throw ExitCode(1)
    }
}

struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Copy every intact event of a damaged trace into a new one, marking each loss.",
        discussion: Help.flow("""
        Writes a loss record where frames were unreadable, so replay and conformance
        see the gap. Exit 0 when the output was written.

        Example:
          vfiotrace recover killed.vft -o recovered.vft
        """)
    )

    @Argument(help: "The damaged trace.", completion: .file(extensions: ["vft"]))
    var trace: String

    @Option(name: .shortAndLong, help: "Where to write the recovered trace (`-`: standard output; the report then goes to standard error).")
    var output: String

    func run() throws {
        let r = try openTrace(trace)
        let rep: TraceRecovery.Report
        let toStandardOutput = output == "-"
        do {
            let out = try beginOutput(output, inputs: [trace])
            do {
                rep = try TraceRecovery.recover(r, to: out)
                try commitOutput(out)
            } catch {
                out.abandon()
                throw error
            }
        } catch let f as Failure {
            throw f
        } catch {
            throw Failure.trouble("\(output): \(error)")
        }
        // With `-o -` the trace is standard output: the report goes to stderr.
        var out = OutputBuffer(fd: toStandardOutput ? 2 : 1)
        for p in rep.scan.problems { out.line("\(trace): \(p)") }
        out.line("\(toStandardOutput ? "standard output" : output): kept \(rep.keptEvents) events, \(rep.lossRecords) loss record(s) added, \(rep.scan.damagedBytes) bytes dropped")
        out.flush()
    }
}

extension String {
    init(format1 v: Double) {
        let scaled = (v * 10).rounded() / 10
        self = String(scaled)
    }
}
