import Trace
#if canImport(Glibc)
import Glibc
#endif

// The CLI's side of reading events: every input error becomes trouble
// (exit 2) with the library's one-line message naming the file and place.

func openInput(_ path: String) throws -> EventInput {
    do { return try EventInput.open(path) } catch { throw Failure.trouble("\(error)") }
}

func inputEvents(_ input: EventInput) throws -> EventIterator {
    do { return try input.events() } catch { throw Failure.trouble("\(error)") }
}

func nextEvent(_ events: inout EventIterator) throws -> Event? {
    do { return try events.next() } catch { throw Failure.trouble("\(error)") }
}

/// Trouble when the stream met damage (its events were still handed out).
func checkProblems(_ events: EventIterator) throws {
    if let p = events.problems.first { throw Failure.trouble(InputError.damaged(path: events.path, p).description) }
}

/// Every event of `path`, for the commands that compare whole traces.
func readAllEvents(_ path: String) throws -> [Event] {
    do { return try EventInput.open(path).readAll() } catch { throw Failure.trouble("\(error)") }
}

/// An output file written aside and renamed (`OutputFile`); refused when
/// it is one of the inputs.
func beginOutput(_ path: String, inputs: [String]) throws -> OutputFile {
    do { return try OutputFile.begin(path, inputs: inputs) } catch { throw Failure.trouble("\(error)") }
}

func commitOutput(_ out: OutputFile) throws {
    do { try out.commit() } catch { throw Failure.trouble("\(error)") }
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
    _ = Array(s.utf8).withUnsafeBytes { Posix.writeAll(fd, $0) }
}
