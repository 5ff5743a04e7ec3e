import Testing
import TestSupport
@testable import Trace

/// The inputs kept under Tests/FuzzInputs/ (``FuzzInputs``), through the
/// entry points the libFuzzer harnesses call: each must now simply return.

@Suite("Inputs fuzzing found: the readers")
struct TraceFuzzInputTests {
    @Test("every kept text input parses or fails with a message, never a trap")
    func text() {
        let inputs = FuzzInputs.inputs("text")
        #expect(inputs.count >= 3, "the text crashes found so far are kept in Tests/FuzzInputs/text")
        for (_, bytes) in inputs { TraceFuzzing.text(bytes) }
    }

    @Test("every kept binary input reads or reports damage, never a trap")
    func trace() throws {
        let inputs = FuzzInputs.inputs("trace")
        #expect(!inputs.isEmpty, "Tests/FuzzInputs/trace holds the seek index with a frame at 2^63")
        for (_, bytes) in inputs { TraceFuzzing.binaryTrace(bytes) }
        // The index claiming a frame at 2^63 is ignored; the frames are read without it.
        let file = TraceFile(bytes: try #require(inputs.first { $0.name == "index-offset-2pow63.vft" }).bytes, name: "i.vft")
        let reader = try TraceReader(file: file)
        #expect(reader.storedIndex == nil)
        #expect(try TraceScan.run(reader).events == 19)
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
