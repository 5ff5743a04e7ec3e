import Foundation
import Testing
@testable import Trace

@Suite("Kernel versions from release strings")
struct KernelVersionTests {
    @Test("upstream and Debian release strings parse to major.minor.patch; what follows the numbers is ignored",
          arguments: [
              ("6.1.0-56-amd64", KernelVersion(6, 1, 0)),
              ("6.12.117+deb12-amd64", KernelVersion(6, 12, 117)),
              ("5.10.0-32-amd64", KernelVersion(5, 10, 0)),
              ("6.12-rc3", KernelVersion(6, 12, 0)),
              ("v5.8", KernelVersion(5, 8, 0)),
              ("5.9.2", KernelVersion(5, 9, 2)),
          ])
    func parses(release: String, expected: KernelVersion) {
        #expect(KernelVersion(release: release) == expected, "\(release)")
    }

    @Test("strings without major.minor are not versions", arguments: ["", "6", "latest", "v", "x6.1", "6.", ".1"])
    func rejects(release: String) {
        #expect(KernelVersion(release: release) == nil, "\(release)")
    }

    @Test("ordered by number, not as decimals: 5.9 < 5.10 < 6.0 < 6.1.5 < 6.12")
    func order() {
        let sorted = ["6.12", "5.10", "6.1.5", "5.9", "6.0"].compactMap { KernelVersion(release: $0) }.sorted()
        #expect(sorted.map(\.description) == ["5.9", "5.10", "6.0", "6.1.5", "6.12"])
    }
}

@Suite("Reading events from a trace or a scenario")
struct EventInputTests {
    static let scenario = """
    !kernel 6.1.0-56-amd64
    marker "a"
    marker "b"
    marker "c"
    """

    func read(_ input: EventInput) throws -> ([Event], [TraceReader.Problem]) {
        var it = try input.events()
        var out: [Event] = []
        while let e = try it.next() { out.append(e) }
        return (out, it.problems)
    }

    @Test("a scenario and its compiled trace give the same header and events, and can be read twice")
    func sameEitherWay() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (header, events) = try TextParser.parse(Self.scenario)
        #expect(events.count == 3)
        try Self.scenario.write(toFile: dir + "/s.vfs", atomically: true, encoding: .utf8)
        try writeTrace(dir + "/s.vft", events, header: header)
        let text = try EventInput.open(dir + "/s.vfs")
        let binary = try EventInput.open(dir + "/s.vft")
        #expect(text.format == .text && binary.format == .binary)
        #expect(text.header.kernelRelease == "6.1.0-56-amd64" && binary.header.kernelRelease == "6.1.0-56-amd64")
        #expect(try read(text).0 == events)
        #expect(try read(binary).0 == events)
        #expect(try read(text).0 == events, "a second pass reads the text again")
        #expect(try binary.readAll() == events)
    }

    @Test("text is streamed in chunks: lines across chunk boundaries, a last line without newline, a long line")
    func chunkedLines() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Enough markers that the 1 MiB chunks split lines, one of them 3 MiB long.
        var lines = (0..<40_000).map { "marker \"m\($0)\"" }
        lines.insert("marker \"" + String(repeating: "x", count: 3 << 20) + "\"", at: 20_000)
        try lines.joined(separator: "\n").write(toFile: dir + "/big.vfs", atomically: true, encoding: .utf8)
        let (events, problems) = try read(try EventInput.open(dir + "/big.vfs"))
        #expect(problems.isEmpty)
        #expect(events.count == 40_001)
        guard events.count == 40_001 else { return }
        if case .marker(let m) = events[20_000].body { #expect(m.text.count == 3 << 20) } else { Issue.record("event 20000 is not the long marker") }
        if case .marker(let m) = events.last!.body { #expect(m.text == "m39999") } else { Issue.record("last event is not a marker") }
    }

    @Test("a syntax error names the file, line and column; a non-UTF-8 line names the file and line")
    func textErrors() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "marker \"ok\"\nmap_dma iova=zz size=4K\n".write(toFile: dir + "/bad.vfs", atomically: true, encoding: .utf8)
        #expect(throws: InputError.self) { _ = try read(try EventInput.open(dir + "/bad.vfs")) }
        do { _ = try read(try EventInput.open(dir + "/bad.vfs")) } catch {
            #expect("\(error)".hasPrefix(dir + "/bad.vfs:2:"), "\(error)")
        }
        writeBytes(dir + "/latin1.vfs", Array("marker \"a\"\nmarker \"".utf8) + [0xE9, 0x22, 0x0A])
        do {
            _ = try read(try EventInput.open(dir + "/latin1.vfs"))
            Issue.record("a Latin-1 byte was accepted")
        } catch {
            #expect("\(error)".hasPrefix(dir + "/latin1.vfs:2: not UTF-8"), "\(error)")
        }
        #expect(EventInput.firstInvalidLine(Array("a\nb\n".utf8) + [0xFF]) == 3)
    }

    @Test("damage in a binary trace is collected, the events around it still come; readAll refuses it")
    func damage() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, events, ends) = try RobustnessTests.multiFrameTrace(dir)
        var bytes = readBytes(path)
        // Garble the middle of the second frame: only its events are lost.
        for i in (ends[0].end + 8)..<(ends[1].end - 2) { bytes[i] = 0x55 }
        writeBytes(dir + "/t.vft", bytes)
        let input = try EventInput.open(dir + "/t.vft")
        let (got, problems) = try read(input)
        #expect(problems.count == 1)
        #expect(got == Array(events.prefix(ends[0].events)) + Array(events.suffix(from: ends[1].events)))
        #expect(throws: InputError.self) { _ = try input.readAll() }
    }

    @Test("a missing file is an error naming it; an empty file is an empty scenario")
    func missingAndEmpty() throws {
        do {
            _ = try EventInput.open("/nonexistent/x.vft")
            Issue.record("opened a missing file")
        } catch {
            #expect("\(error)".contains("/nonexistent/x.vft") && "\(error)".contains("ENOENT"), "\(error)")
        }
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        writeBytes(dir + "/e.vfs", [])
        let (events, _) = try read(try EventInput.open(dir + "/e.vfs"))
        #expect(events.isEmpty)
    }

    @Test("loss summary: records, events they count, records of unknown count; saturating on crafted counts")
    func lossSummary() {
        var s = TraceScan()
        #expect(s.lossSummary == nil)
        s.losses.add(seq: 1, Loss(count: 5, reason: "a"))
        s.losses.add(seq: 2, Loss(count: 0, reason: "b"))
        #expect(s.lossSummary == "2 (5 events lost, 1 record of unknown count)")
        var t = LossTally()
        t.add(seq: 1, Loss(count: .max, reason: "a"))
        t.add(seq: 2, Loss(count: 2, reason: "b"))
        #expect(t.summary == "2 (\(UInt64.max) events lost)")
        // Counted in constant memory: only the first records are listed.
        for i in 0..<(LossTally.listLimit + 5) { t.add(seq: UInt64(i), Loss(count: 1, reason: "")) }
        #expect(t.count == LossTally.listLimit + 7 && t.listed.count == LossTally.listLimit)
    }
}

@Suite("Line endings")
struct LineEndingTests {
    @Test("CRLF text gives the same events through a file, standard-input bytes and TextParser.parse")
    func crlf() throws {
        let unix = "open /dev/vfio/vfio -> 3\nmarker \"a\"\nmarker \"b\"\n"
        let dos = unix.replacingOccurrences(of: "\n", with: "\r\n")
        let expected = try TextParser.parse(unix).1
        #expect(expected.count == 3)
        #expect(try TextParser.parse(dos).1 == expected)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try dos.write(toFile: dir + "/dos.vfs", atomically: true, encoding: .utf8)
        #expect(try EventInput.open(dir + "/dos.vfs").readAll() == expected)
    }
}
