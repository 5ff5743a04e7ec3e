import Foundation
import Trace

/// A fresh temporary directory per test, removed by the caller.
func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "vfiotrace-tests-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func writeTrace(_ path: String, _ events: [Event], header: TraceHeader = TraceHeader(captureMode: "test"),
                options: TraceWriter.Options = .init()) throws {
    let w = try TraceWriter(path: path, header: header, options: options)
    for e in events { try w.append(e) }
    try w.close()
}

func readBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }

func writeBytes(_ path: String, _ b: [UInt8]) { FileManager.default.createFile(atPath: path, contents: Data(b)) }

/// Prints then parses, as `cat` followed by `compile` does.
func textRoundTrip(_ header: TraceHeader, _ events: [Event]) throws -> (TraceHeader, [Event]) {
    var p = TextPrinter()
    var lines = TextPrinter.headerLines(header)
    for e in events { lines.append(p.line(for: e)) }
    return try TextParser.parse(lines.joined(separator: "\n"))
}
