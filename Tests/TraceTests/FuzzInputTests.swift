import Foundation
import Testing
@testable import Trace

/// The inputs kept under Tests/FuzzInputs/TARGET/, run through the same
/// entry points the libFuzzer harnesses call (scripts/fuzz): each once
/// crashed or leaked there, and must now simply return.
enum FuzzInputs {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("FuzzInputs").path
    }()

    /// The kept inputs of `target`, by file name.
    static func inputs(_ target: String) -> [(name: String, bytes: [UInt8])] {
        let dir = root + "/" + target
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.compactMap { n in FileManager.default.contents(atPath: dir + "/" + n).map { (n, [UInt8]($0)) } }
    }
}

@Suite("Inputs fuzzing found: the readers")
struct TraceFuzzInputTests {
    @Test("every kept text input parses or fails with a message, never a trap")
    func text() {
        let inputs = FuzzInputs.inputs("text")
        #expect(inputs.count >= 3, "the text crashes found so far are kept in Tests/FuzzInputs/text")
        for (_, bytes) in inputs { TraceFuzzing.text(bytes) }
    }

    @Test("every kept binary input reads or reports damage, never a trap")
    func trace() {
        for (_, bytes) in FuzzInputs.inputs("trace") { TraceFuzzing.binaryTrace(bytes) }
    }

    @Test("the crashes' own lines: '-> ok' with no event, a capability with ':' before '@'")
    func crashLines() {
        do {
            _ = try TextParser.parse("-> ok\n")
            Issue.record("a line with no event parsed")
        } catch {
            #expect("\(error)".contains("expected an event before '->'"), "\(error)")
        }
        do {
            _ = try TextParser.parse("open /dev/vfio/vfio -> 3\nget_info -> ok cap=dma:x@5\n")
            Issue.record("a malformed capability parsed")
        } catch {
            #expect("\(error)".contains("capability"), "\(error)")
        }
    }
}
