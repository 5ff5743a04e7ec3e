/// The records of one decompressed data frame.
public struct FrameContent: Sendable {
    public var events: [Event] = []
    /// Records of types this version does not know (skipped). They are
    /// events to the writer that knew them: the frame end's count and the
    /// seek index count them, so the position of an event in the file is
    /// its record's position, known type or not.
    public var unknownRecords: Int = 0
    /// Each event's record position in the frame, when unknown records sit
    /// between them (empty otherwise: positions are 0, 1, 2, …).
    public var positions: [Int] = []

    /// Event and unknown records: what the frame holds in the file's count.
    public var recordCount: Int { events.count + unknownRecords }
    /// Set when the frame's records do not check out; `events` then holds the
    /// records decoded before the problem.
    public var damage: String? = nil
    /// Offset within the content where decoding stopped on damage.
    public var damageOffset: Int = 0

    /// Splits and decodes `content`. The last record must be `frame_end`,
    /// whose CRC32C covers every byte before it.
    public static func parse(_ content: [UInt8]) -> FrameContent {
        var out = FrameContent()
        var codec = EventCodec()
        var sawEnd = false
        content.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            var records = 0
            while !r.isAtEnd {
                let recordStart = r.offset
                do throws(DecodeError) {
                    let typeByte = try r.u8()
                    let lenAt = r.offset
                    let len = try r.varint()
                    guard len <= UInt64(r.remaining) else {
                        throw DecodeError.corrupt(at: lenAt, "record length \(len) runs past the frame")
                    }
                    let payload = UnsafeRawBufferPointer(rebasing: raw[r.offset..<r.offset + Int(len)])
                    try r.skip(Int(len))
                    guard let type = RecordType(rawValue: typeByte) else {
                        if out.positions.isEmpty { out.positions = Array(0..<out.events.count) }
                        out.unknownRecords += 1
                        records += 1
                        continue
                    }
                    if type == .frameEnd {
                        var p = ByteReader(payload)
                        let count = try p.varint()
                        let crc = try p.u32()
                        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<recordStart]))
                        guard crc == actual else { throw DecodeError.corrupt(at: recordStart, "record checksum mismatch") }
                        guard count == UInt64(records) else {
                            throw DecodeError.corrupt(at: recordStart, "frame holds \(records) records, end says \(count)")
                        }
                        guard r.isAtEnd else { throw DecodeError.corrupt(at: r.offset, "data after frame end") }
                        sawEnd = true
                        break
                    }
                    var p = ByteReader(payload)
                    do throws(DecodeError) {
                        out.events.append(try codec.decode(type: type, payload: &p))
                        if !out.positions.isEmpty { out.positions.append(records) }
                    } catch {
                        switch error {
                        case .truncated(let at): throw DecodeError.corrupt(at: lenAt + at, "\(type.name) record too short")
                        case .corrupt(let at, let why): throw DecodeError.corrupt(at: recordStart + at, why)
                        }
                    }
                    records += 1
                } catch {
                    switch error {
                    case .truncated(let at): out.damage = "record cut short"; out.damageOffset = at
                    case .corrupt(let at, let why): out.damage = why; out.damageOffset = at
                    }
                    return
                }
            }
            if !sawEnd { out.damage = "frame has no end record"; out.damageOffset = content.count }
        }
        return out
    }
}
