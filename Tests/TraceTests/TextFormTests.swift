import Testing
import Trace

@Suite("Text form")
struct TextFormTests {
    @Test("scenario defaults fill in fds, argsz, flags and bitmap sizes")
    func defaults() throws {
        let (_, e) = try TextParser.parse("""
            open /dev/vfio/vfio -> 3
            open /dev/vfio/7 -> 9
            group_set_container kind=emulated -> ok
            dirty get iova=0x100000 size=1M -> ok dirty=[0,10..12]
            unmap_dma iova=0x100000 size=1M bitmap
            """)
        #expect(e.map(\.seq) == [0, 1, 2, 3, 4])
        #expect(e[2].body == .groupSetContainer(GroupSetContainer(fd: 9, container: 3, kind: .emulated, result: .ok(0))))
        let bm = BitmapArg(pgsize: 4096, size: 32)
        #expect(e[3].body == .dirtyPages(DirtyPages(fd: 3, argsz: 48, flags: 4, range: DirtyRange(iova: 0x100000, size: 1 << 20, bitmap: bm),
                                                    result: .ok(0), bitmapOut: BitmapBytes(byteCount: 32, setBits: [0..<1, 10..<13]))))
        #expect(e[4].body == .unmapDMA(UnmapDMA(fd: 3, argsz: 48, flags: 1, iova: 0x100000, size: 1 << 20, bitmap: bm)))
    }

    @Test("errors name the line and column", arguments: [
        ("open /dev/vfio/vfio -> 3\nmap_dma iova=0x1000", 2, "needs size="),
        ("open /dev/vfio/vfio -> 3\nmap_dma iova=0x1000 size=4Q -> ok", 2, "not a number"),
        ("frobnicate", 1, "unknown event"),
        ("open /dev/vfio/vfio -> 3\ndirty get iova=0 size=4K -> EWHAT", 2, "expected ok"),
        ("open /dev/vfio/vfio -> 3\ndirty start bogus=1", 2, "unexpected 'bogus=1'"),
        ("marker \"unterminated", 1, "unterminated"),
        ("marker \"a\"\n!kernel 6.1", 2, "before the first event"),
        ("get_api_version", 1, "no earlier open"),
    ] as [(String, Int, String)])
    func errors(text: String, line: Int, needle: String) {
        do {
            _ = try TextParser.parse(text)
            Issue.record("accepted: \(text)")
        } catch let e as TextError {
            #expect(e.line == line)
            #expect(e.message.contains(needle), "\(e)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("numbers: hex, decimal and kernel-style sizes")
    func numbers() {
        #expect(TextSyntax.number("4K") == 4096)
        #expect(TextSyntax.number("0x10") == 16)
        #expect(TextSyntax.number("8T") == 1 << 43)
        #expect(TextSyntax.number("16E") == nil) // overflow
        #expect(TextSyntax.size(2 << 20) == "2M")
        #expect(TextSyntax.size(4097) == "0x1001")
        #expect(TextSyntax.size(48) == "48")
    }
}

@Suite("Strings from a trace cannot forge text")
struct TextInjectionTests {
    @Test("header strings and open paths with newlines, quotes and escape sequences round-trip through the text form, one line each")
    func hostileStrings() throws {
        var h = TraceHeader(captureMode: "ptrace\n#7 marker \"forged\"")
        h.kernelRelease = "6.1.0\u{1B}[2J"
        h.host = " padded "
        h.tool = "\"quoted\""
        let events = [
            Event(seq: 0, time: 0, tid: 1, .open(Open(path: "/dev/vfio/1\nopen /dev/vfio/2", result: .ok(3)))),
            Event(seq: 1, time: 0, tid: 1, .marker(Marker("x"))),
        ]
        var p = TextPrinter()
        let lines = TextPrinter.headerLines(h) + events.map { p.line(for: $0) }
        #expect(lines.count == 6)
        for l in lines { #expect(!l.contains("\n") && !l.unicodeScalars.contains { $0.value == 0x1B }, "\(l)") }
        let (back, parsed) = try TextParser.parse(lines.joined(separator: "\n"))
        #expect(parsed == events)
        #expect(back.captureMode == h.captureMode && back.kernelRelease == h.kernelRelease && back.host == h.host && back.tool == h.tool)
        // Plain values are printed as they always were.
        #expect(TextPrinter.headerLines(TraceHeader(kernelRelease: "6.1.0-56-amd64", tool: "vfiotrace 0.1.0", captureMode: "ptrace")).contains("!tool vfiotrace 0.1.0"))
    }
}

@Suite("Round trips of what verify accepts")
struct VerifiedRoundTripTests {
    @Test("sequence numbers that restart or go backwards survive cat | compile exactly")
    func backwardsSequence() throws {
        let events = [Event(seq: 5, time: 0, tid: 1, .marker(Marker("a"))), Event(seq: 3, time: 0, tid: 1, .marker(Marker("b"))),
                      Event(seq: 0, time: 0, tid: 1, .marker(Marker("c")))]
        let (_, back) = try textRoundTrip(TraceHeader(captureMode: "test"), events)
        #expect(back == events)
        let dir = temporaryDirectory()
        try writeTrace(dir + "/t.vft", events, options: .init(frameBytes: 1))
        #expect(try TraceScan.run(TraceReader(path: dir + "/t.vft")).isIntact)
        #expect(try TraceReader(path: dir + "/t.vft").readAll() == events)
    }

    @Test("a header page size the text form cannot say is refused by every reader, naming the offset", arguments: [0, 3, 4097, UInt32.max])
    func badPageSize(pageSize: UInt32) throws {
        let dir = temporaryDirectory()
        var h = TraceHeader(captureMode: "test")
        h.pageSize = pageSize
        try writeTrace(dir + "/p.vft", [Event(.marker(Marker("x")))], header: h)
        do {
            _ = try TraceReader(path: dir + "/p.vft")
            Issue.record("page size \(pageSize) accepted")
        } catch {
            #expect("\(error)".contains("offset 24") && "\(error)".contains("page size \(pageSize)"), "\(error)")
        }
    }
}
