/// The records of one decompressed data frame, checked before any is
/// decoded and then decoded one at a time.
///
/// ``parse(_:)`` walks the record framing only (type byte, length, bounds)
/// and checks the `frame_end` record's CRC32C and count: no event is built
/// and nothing is allocated per record, so a frame of ten million tiny
/// records costs its decompressed bytes and no more. ``records()`` then
/// decodes one event per call, so memory stays one event whatever the
/// compression ratio of the frame.
public struct FrameContent: Sendable {
    /// The decompressed bytes.
    let bytes: [UInt8]
    /// Where record decoding stops: the `frame_end` record, or the first
    /// record whose framing is damaged.
    let recordsEnd: Int
    /// The framing damage (offset, why), if any. A payload that does not
    /// decode is found later, by ``Records``, and takes precedence because
    /// it comes earlier in the frame.
    let framingDamage: (offset: Int, reason: String)?

    /// Checks the framing and checksum of `content`. The last record must be
    /// `frame_end`, whose CRC32C covers every byte before it and whose count
    /// is the number of records before it (unknown types included).
    public static func parse(_ content: [UInt8]) -> FrameContent {
        var end = 0
        var damage: (Int, String)? = nil
        content.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            var records: UInt64 = 0
            while true {
                let recordStart = r.offset
                end = recordStart
                guard !r.isAtEnd else { damage = (content.count, "frame has no end record"); return }
                do throws(DecodeError) {
                    let typeByte = try r.u8()
                    let lenAt = r.offset
                    let len = try r.varint()
                    guard len <= UInt64(r.remaining) else {
                        throw DecodeError.corrupt(at: lenAt, "record length \(len) runs past the frame")
                    }
                    let payloadStart = r.offset
                    try r.skip(Int(len))
                    guard typeByte == RecordType.frameEnd.rawValue else { records += 1; continue }
                    var p = ByteReader(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<r.offset]))
                    let count = try p.varint()
                    let crc = try p.u32()
                    let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<recordStart]))
                    guard crc == actual else { throw DecodeError.corrupt(at: recordStart, "record checksum mismatch") }
                    guard count == records else {
                        throw DecodeError.corrupt(at: recordStart, "frame holds \(records) records, end says \(count)")
                    }
                    guard r.isAtEnd else { throw DecodeError.corrupt(at: r.offset, "data after frame end") }
                    return
                } catch {
                    switch error {
                    case .truncated(let at): damage = (at, "record cut short")
                    case .corrupt(let at, let why): damage = (at, why)
                    }
                    return
                }
            }
        }
        return FrameContent(bytes: content, recordsEnd: end, framingDamage: damage.map { (offset: $0.0, reason: $0.1) })
    }

    /// The frame's events, decoded one per ``Records/next()``.
    public func records(only wanted: RecordTypeSet = .all) -> Records { Records(content: self, only: wanted) }

    /// Decodes a frame's records in order. Once ``next()`` has returned nil,
    /// ``recordCount``, ``unknownRecords`` and ``damage`` describe the frame.
    public struct Records: Sendable {
        let content: FrameContent
        var offset = 0
        var codec = EventCodec()
        var finished = false
        /// Records passed so far, events and unknown types: after the end,
        /// what the frame holds in the file's count (the records before any
        /// damage).
        public private(set) var recordCount = 0
        /// Records of types this version does not know (skipped). They are
        /// events to the writer that knew them: the frame end's count and
        /// the seek index count them, so the position of an event in the
        /// file is its record's position, known type or not.
        public private(set) var unknownRecords = 0
        /// Set when the frame's records do not check out; the events handed
        /// out before it are the records before the problem.
        public private(set) var damage: String? = nil
        /// Offset within the content where decoding stopped on damage.
        public private(set) var damageOffset = 0

        /// Record types decoded; the others only advance the delta state.
        let wanted: RecordTypeSet

        init(content: FrameContent, only wanted: RecordTypeSet = .all) {
            self.content = content
            self.wanted = wanted
        }

        /// The next event and its record position in the frame (unknown
        /// records count), or nil at the frame's end or its damage.
        public mutating func next() -> (event: Event, position: Int)? {
            guard !finished else { return nil }
            let end = content.recordsEnd
            let result: Result<(Event, Int)?, DecodeError> = content.bytes.withUnsafeBytes { raw in
                var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<end]), offset: offset)
                while !r.isAtEnd {
                    let recordStart = r.offset
                    // The framing pass has checked type, length and bounds of
                    // every record before `end`.
                    do throws(DecodeError) {
                        let typeByte = try r.u8()
                        let lenAt = r.offset
                        let len = Int(try r.varint())
                        let payload = UnsafeRawBufferPointer(rebasing: raw[r.offset..<r.offset + len])
                        try r.skip(len)
                        let position = recordCount
                        recordCount += 1
                        guard let type = RecordType(rawValue: typeByte) else { unknownRecords += 1; continue }
                        var p = ByteReader(payload)
                        do throws(DecodeError) {
                            if wanted != .all && !wanted.contains(rawType: typeByte) {
                                try codec.advance(payload: &p)
                                continue
                            }
                            let e = try codec.decode(type: type, payload: &p)
                            offset = r.offset
                            return .success((e, position))
                        } catch {
                            recordCount -= 1
                            switch error {
                            case .truncated(let at): return .failure(.corrupt(at: lenAt + at, "\(type.name) record too short"))
                            case .corrupt(let at, let why): return .failure(.corrupt(at: recordStart + at, why))
                            }
                        }
                    } catch {
                        return .failure(error)
                    }
                }
                offset = r.offset
                return .success(nil)
            }
            switch result {
            case .success(let some?): return some
            case .success(nil):
                finished = true
                if let d = content.framingDamage { damage = d.reason; damageOffset = d.offset }
                return nil
            case .failure(let error):
                finished = true
                switch error {
                case .truncated(let at): damage = "record cut short"; damageOffset = at
                case .corrupt(let at, let why): damage = why; damageOffset = at
                }
                return nil
            }
        }
    }
}
