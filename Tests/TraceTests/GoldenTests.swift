import Foundation
import Testing
import Trace

/// `Golden/format-v1.vft` was written by format version 1.0 and is checked
/// in: every later vfiotrace must keep reading it to the same events.
@Suite("Golden trace of format 1.0")
struct GoldenTests {
    static let dir = Bundle.module.resourcePath! + "/Golden"

    @Test("the checked-in v1.0 trace reads to the events its text describes")
    func readsGolden() throws {
        let r = try TraceReader(path: Self.dir + "/format-v1.vft")
        #expect(r.header.formatMajor == 1)
        #expect(r.header.formatMinor == 0)
        #expect(r.header.kernelRelease == "6.12.117+deb12-amd64")
        #expect(r.header.captureMode == "ptrace+pins")
        #expect(r.header.createdAt == 1_764_100_000_000_000_000)
        let events = try r.readAll()
        let text = try String(contentsOfFile: Self.dir + "/format-v1.vfs", encoding: .utf8)
        let (h, expected) = try TextParser.parse(text)
        #expect(h == r.header)
        #expect(events == expected)
        #expect(try TraceScan.run(r).isIntact)

        // Spot checks that do not go through the text parser.
        #expect(events.count == 27)
        #expect(events.first == Event(seq: 0, time: 100_000_000_001, tid: 4242, .open(Open(path: "/dev/vfio/vfio", result: .ok(3)))))
        #expect(events.last?.seq == 40)
        #expect(events.last?.body == .close(Close(fd: 6, result: .ok(0))))
        let pin = events.first { if case .pin = $0.body { return true }; return false }
        #expect(pin?.body == .pin(Pin(group: 20, iova: 0x101000, npage: 3, prot: 2, result: .ok(3))))
        #expect(pin?.tid == 4243)
        let query = events.first { if case .dirtyPages(let d) = $0.body { return d.range?.bitmap.prior != nil }; return false }
        guard case .dirtyPages(let d)? = query?.body else { Issue.record("no query with a prior buffer"); return }
        #expect(d.range?.bitmap.prior == BitmapBytes(repeating: 0xA5, count: 64))
        #expect(d.bitmapOut == BitmapBytes(repeating: 0xFF, count: 64))
    }
}
