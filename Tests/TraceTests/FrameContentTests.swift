import Testing
@testable import Trace

/// A frame's records as `FrameContent` sees them after zstd: its own
/// checks (the frame end's CRC32C and count) are what stands between a
/// frame that decompresses cleanly and events a replay would trust.
@Suite("Frame content checks")
struct FrameContentTests {
    static let events = [Event(seq: 0, .marker(Marker("a"))), Event(seq: 1, .marker(Marker("b"))),
                         Event(seq: 2, .marker(Marker("c")))]

    /// The records of `events`, then a frame end saying `count` with `crc`
    /// (by default the right ones).
    static func content(_ events: [Event], count: UInt64? = nil, crc: ((UInt32) -> UInt32)? = nil) -> [UInt8] {
        var codec = EventCodec()
        var frame = ByteWriter()
        for e in events { codec.encode(e, into: &frame) }
        let sum = CRC32C.checksum(frame.bytes)
        var end = ByteWriter()
        end.varint(count ?? UInt64(events.count))
        end.u32(crc.map { $0(sum) } ?? sum)
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        return frame.bytes
    }

    func decodeAll(_ bytes: [UInt8]) -> (events: [Event], records: FrameContent.Records) {
        var it = FrameContent.parse(bytes).records()
        var out: [Event] = []
        while let (e, _) = it.next() { out.append(e) }
        return (out, it)
    }

    @Test("an intact frame gives its events, their positions and no damage")
    func intact() {
        var it = FrameContent.parse(Self.content(Self.events)).records()
        var positions: [Int] = []
        while let (_, p) = it.next() { positions.append(p) }
        #expect(positions == [0, 1, 2])
        #expect(it.damage == nil && it.recordCount == 3)
    }

    @Test("records that disagree with the frame end's CRC are damage, whatever bit of the CRC differs", arguments: [0, 1, 17, 31])
    func checksumMismatch(bit: Int) {
        let (events, it) = decodeAll(Self.content(Self.events, crc: { $0 ^ (1 << UInt32(bit)) }))
        #expect(it.damage == "record checksum mismatch")
        // The records before the frame end are still handed out (recover keeps them).
        #expect(events.map(\.body) == Self.events.map(\.body))
    }

    @Test("a frame end whose count is not the records before it is damage", arguments: [0, 2, 4, 1 << 40] as [UInt64])
    func countMismatch(count: UInt64) {
        let (_, it) = decodeAll(Self.content(Self.events, count: count))
        #expect(it.damage == "frame holds 3 records, end says \(count)")
    }

    @Test("the checksum is checked before any record is decoded: a bad CRC is found without decoding")
    func checksumFirst() {
        // A record whose payload does not decode, under a wrong CRC: parse
        // alone (no decoding) already knows the frame is damaged.
        var frame = ByteWriter()
        frame.u8(RecordType.marker.rawValue)
        frame.blob([0xFF])
        var end = ByteWriter()
        end.varint(1)
        end.u32(CRC32C.checksum(frame.bytes) ^ 1)
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        let parsed = FrameContent.parse(frame.bytes)
        #expect(parsed.framingDamage?.reason == "record checksum mismatch")
        #expect(parsed.recordsEnd == 3)
    }

    @Test("a payload that does not decode, under a correct CRC, stops the frame at that record")
    func payloadDamage() {
        var frame = ByteWriter()
        var codec = EventCodec()
        codec.encode(Self.events[0], into: &frame)
        frame.u8(RecordType.marker.rawValue)
        frame.blob([0xFF])
        var end = ByteWriter()
        end.varint(2)
        end.u32(CRC32C.checksum(frame.bytes))
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        #expect(FrameContent.parse(frame.bytes).framingDamage == nil)
        let (events, it) = decodeAll(frame.bytes)
        #expect(events.count == 1 && it.damage != nil && it.recordCount == 1, "\(String(describing: it.damage))")
    }

    @Test("a seek index with a correct CRC but offsets or counts no file can have is ignored, not trusted or trapped on",
          arguments: [(UInt64(1) << 63, UInt32(16)), (UInt64.max, UInt32(16)), (UInt64(40), UInt32.max)])
    func implausibleIndex(offset: UInt64, compressedSize: UInt32) throws {
        let dir = temporaryDirectory()
        let path = dir + "/i.vft"
        try writeTrace(path, Self.events)
        var bytes = readBytes(path)
        let good = try #require(try TraceReader(path: path).storedIndexOffset)
        var index = SeekIndex()
        index.entries = [SeekIndex.Entry(offset: offset, compressedSize: compressedSize, contentSize: 0, firstEvent: 0, eventCount: 3, crc: 0)]
        bytes = Array(bytes[..<good]) + index.encoded()
        writeBytes(path, bytes)
        let r = try TraceReader(path: path)
        #expect(r.storedIndex == nil)
        var got = 0
        var it = try r.events()
        while try it.next() != nil { got += 1 }
        #expect(got == Self.events.count)
    }
}

/// The LEB128 reader's 64-bit edge (issue 19 item 3): the tenth byte may
/// carry one bit and no more.
@Suite("Varint edges")
struct VarintEdgeTests {
    static let nineFF = [UInt8](repeating: 0xFF, count: 9)

    @Test("UInt64.max is nine 0xFF and a 0x01, written and read back")
    func maximum() throws {
        var w = ByteWriter()
        w.varint(.max)
        #expect(w.bytes == Self.nineFF + [0x01])
        let v = try w.bytes.withUnsafeBytes { raw throws(DecodeError) -> UInt64 in
            var r = ByteReader(raw)
            return try r.varint()
        }
        #expect(v == .max)
    }

    @Test("a tenth byte with more than the one bit left is an overflow, not a wrapped value", arguments: [0x02, 0x40, 0x7F, 0x81] as [UInt8])
    func overflow(last: UInt8) {
        let bytes = Self.nineFF + [last]
        bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            do throws(DecodeError) {
                let v = try r.varint()
                Issue.record("read \(v) from nine 0xFF and 0x\(String(last, radix: 16))")
            } catch {
                #expect(error == .corrupt(at: 0, "varint overflows 64 bits"))
            }
        }
    }
}
