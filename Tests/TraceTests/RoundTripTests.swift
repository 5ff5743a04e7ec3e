import Testing
import Trace

@Suite("Round trips of random event streams")
struct RoundTripTests {
    @Test("binary: write then read gives the same events", arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func binary(seed: UInt64) throws {
        var g = EventGenerator(seed: seed)
        let events = g.stream(400)
        let dir = temporaryDirectory()
        let path = dir + "/t.vft"
        // Small frames so that the stream spans many frames and the
        // per-frame delta state is exercised.
        try writeTrace(path, events, options: .init(frameBytes: 2048))
        let r = try TraceReader(path: path)
        #expect(r.storedIndex != nil)
        #expect((r.storedIndex?.entries.count ?? 0) > 3)
        let back = try r.readAll()
        #expect(back.count == events.count)
        for (a, b) in zip(events, back) where a != b {
            Issue.record("event \(a.seq) differs:\n  wrote \(a)\n  read  \(b)")
            break
        }
    }

    @Test("text: print then parse gives the same events", arguments: [11, 12, 13, 14, 15, 16, 17, 18] as [UInt64])
    func text(seed: UInt64) throws {
        var g = EventGenerator(seed: seed)
        let events = g.stream(400)
        let header = TraceHeader(kernelRelease: "6.12.117+deb12-amd64", host: "lab", tool: "vfiotrace test",
                                 captureMode: "ptrace", pageSize: 4096, createdAt: 1_764_000_000_000_000_000)
        let (h, back) = try textRoundTrip(header, events)
        #expect(h == header)
        #expect(back.count == events.count)
        var printer = TextPrinter()
        for (a, b) in zip(events, back) where a != b {
            Issue.record("event \(a.seq) differs after text round trip:\n  line  \(printer.line(for: a))\n  wrote \(a)\n  read  \(b)")
            break
        }
    }

    @Test("cat then compile reproduces the binary file byte for byte")
    func compileIsDeterministic() throws {
        var g = EventGenerator(seed: 99)
        let events = g.stream(300)
        let header = TraceHeader(kernelRelease: "6.1.0-13-amd64", tool: "t", captureMode: "scenario")
        let dir = temporaryDirectory()
        try writeTrace(dir + "/a.vft", events, header: header)
        let (h, back) = try textRoundTrip(header, try TraceReader(path: dir + "/a.vft").readAll())
        try writeTrace(dir + "/b.vft", back, header: h)
        #expect(readBytes(dir + "/a.vft") == readBytes(dir + "/b.vft"))
    }

    @Test("extreme values survive both forms")
    func extremes() throws {
        let big = UInt64.max
        let events: [Event] = [
            Event(seq: 0, time: 0, tid: 0, .mapDMA(MapDMA(fd: 3, argsz: .max, flags: .max, vaddr: UserPointer(.kernel, pageOffset: 4095),
                                                        iova: big, size: (1 << 31 + 1) << 12, result: .error(22)))),
            Event(seq: big - 1, time: big, tid: .max, .dirtyPages(DirtyPages(
                fd: -1, argsz: 48, flags: 4,
                range: DirtyRange(iova: 0, size: 1 << 43, bitmap: BitmapArg(pgsize: 4096, size: 1 << 28)),
                result: .ok(0), bitmapOut: BitmapBytes(repeating: 0xFF, count: 1 << 28)))),
            Event(seq: big, time: 0, tid: 1, .pin(Pin(group: .max, iova: big, npage: .max, prot: 0, result: .ok(Int64.min)))),
        ]
        let dir = temporaryDirectory()
        try writeTrace(dir + "/x.vft", events)
        #expect(try TraceReader(path: dir + "/x.vft").readAll() == events)
        #expect(try textRoundTrip(TraceHeader(), events).1 == events)
    }

    @Test("a pin-heavy trace costs a few bytes per event")
    func pinHeavyIsCompact() throws {
        var events: [Event] = []
        var t: UInt64 = 1_000_000
        for i in 0..<100_000 as Range<UInt64> {
            let iova = 0x1_0000_0000 + (i * 7919 % 65536) * 4096
            t += 1500 + i % 700
            let body: EventBody = i % 3 == 2 ? .unpin(Unpin(group: 7, iova: iova, npage: 1, result: nil))
                : .pin(Pin(group: 7, iova: iova, npage: 1, prot: 3, result: .ok(1)))
            events.append(Event(seq: i, time: t, tid: 4242, body))
        }
        let dir = temporaryDirectory()
        try writeTrace(dir + "/p.vft", events)
        let size = readBytes(dir + "/p.vft").count
        let perEvent = Double(size) / Double(events.count)
        print("PERF pin-heavy bytes per event", perEvent); #expect(perEvent < 6, "pin-heavy trace costs \(perEvent) bytes per event")
    }
}
