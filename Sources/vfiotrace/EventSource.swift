import Trace
#if canImport(Glibc)
import Glibc
#endif

/// A trace or a text scenario, read the same way: commands that consume
/// events accept either, told apart by the first bytes (a binary trace
/// starts with the zstd skippable-frame magic of its header).
struct EventSource {
    let path: String
    let header: TraceHeader
    private let reader: TraceReader?
    private let text: String?

    init(path: String) throws {
        self.path = path
        if path != "-" && Self.looksBinary(path) {
            let r = try openTrace(path)
            reader = r
            text = nil
            header = r.header
        } else {
            let t = try readScenarioText(path)
            // The !header lines come before the first event.
            var headerOnly = TextParser()
            var lineNo = 0
            for line in t.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNo += 1
                do {
                    if try headerOnly.parseLine(line, number: lineNo) != nil { break }
                } catch { break }
            }
            reader = nil
            text = t
            header = headerOnly.header
        }
    }

    private static func looksBinary(_ path: String) -> Bool {
        guard let f = try? TraceFile(path: path), f.size >= 4, let b = try? f.read(at: 0, count: 4) else { return false }
        return b == [0x56, 0x2A, 0x4D, 0x18]
    }

    /// Streams every event; a damaged binary trace or a text syntax error
    /// is trouble naming the file and where.
    func forEach(_ body: (Event) throws -> Void) throws {
        if let reader {
            var problem: TraceReader.Problem? = nil
            do {
                try reader.forEachEvent(problem: { p in if problem == nil { problem = p } }) { e in
                    try body(e)
                    return true
                }
            } catch let f as Failure {
                throw f
            } catch {
                throw Failure.trouble("\(path): \(error)")
            }
            if let p = problem {
                throw Failure.trouble("\(path): \(p) (`vfiotrace recover` saves the intact frames)")
            }
        } else if let text {
            var parser = TextParser()
            var lineNo = 0
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                lineNo += 1
                let e: Event?
                do { e = try parser.parseLine(line, number: lineNo) } catch {
                    throw Failure.trouble("\(path):\(error.line):\(error.column): \(error.message)")
                }
                if let e { try body(e) }
            }
        }
    }

    /// All events in memory (for the second trace of a diff).
    func readAll() throws -> [Event] {
        var out: [Event] = []
        try forEach { out.append($0) }
        return out
    }
}

/// Whether standard error is a terminal (progress lines go there only then).
var stderrIsTerminal: Bool { isatty(2) == 1 }

/// A progress line on standard error, redrawn at most every half second.
struct Progress {
    let label: String
    let total: UInt64?
    private var last: UInt64 = 0
    private var shown = false

    init(label: String, total: UInt64?) {
        self.label = label
        self.total = total
    }

    mutating func update(_ done: UInt64) {
        guard stderrIsTerminal, done & 0xFFF == 0 else { return }
        let now = monotonicNanoseconds()
        guard now - last >= 500_000_000 else { return }
        last = now
        shown = true
        var s = "\r\(label): \(done) events"
        if let total, total > 0 { s += " (\(done * 100 / total)%)" }
        printRaw(s, fd: 2)
    }

    func finish() {
        if shown { printRaw("\r\u{1B}[K", fd: 2) }
    }
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func printRaw(_ s: String, fd: Int32) {
    let bytes = Array(s.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
}
