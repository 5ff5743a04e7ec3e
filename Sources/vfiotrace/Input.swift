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

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func printRaw(_ s: String, fd: Int32) {
    _ = Array(s.utf8).withUnsafeBytes { Posix.writeAll(fd, $0) }
}
