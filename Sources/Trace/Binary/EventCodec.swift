/// Encodes events as records and decodes them back.
///
/// A record is `type u8 | length varint | payload`. Every event payload
/// starts with its stream position relative to the previous record of the
/// same frame (sequence delta, time delta, thread id or "same thread"), so a
/// run of pins from one thread costs a few bytes each before compression.
/// The delta state starts afresh in every frame, so each frame decodes on
/// its own.
public struct EventCodec: Sendable {
    /// Largest bitmap (in bytes) a record may declare: twice the kernel's
    /// 256 MiB `DIRTY_BITMAP_SIZE_MAX`, so a recorded oversize request still
    /// fits but a hostile count cannot ask for more.
    public static let maxBitmapBytes: UInt64 = 1 << 29
    /// Largest raw ioctl argument kept.
    public static let maxRawArgBytes = 1 << 20

    private var prevSeq: UInt64 = .max
    private var prevTime: UInt64 = 0
    private var prevTid: UInt32 = 0

    public init() {}

    /// Forget the delta state: called at every frame boundary.
    public mutating func reset() { self = EventCodec() }

    // MARK: Encoding

    /// Appends the event's record to `out`. The payload is written in
    /// place after a one-byte length that is widened afterwards in the rare
    /// case the payload reaches 128 bytes, so a record costs no buffer of
    /// its own.
    public mutating func encode(_ event: Event, into out: inout ByteWriter) {
        out.u8(event.body.recordType.rawValue)
        let lengthAt = out.bytes.count
        out.u8(0)
        out.svarint(Int64(bitPattern: event.seq &- (prevSeq &+ 1)))
        out.svarint(Int64(bitPattern: event.time &- prevTime))
        out.varint(event.tid == prevTid ? 0 : UInt64(event.tid) + 1)
        prevSeq = event.seq
        prevTime = event.time
        prevTid = event.tid
        Self.encodeBody(event.body, into: &out)
        out.patchLength(at: lengthAt)
    }

    static func encode(_ r: CallResult?, into w: inout ByteWriter) {
        switch r {
        case nil: w.u8(0)
        case .ok(let v)?: w.u8(1); w.svarint(v)
        case .error(let e)?: w.u8(2); w.svarint(Int64(e))
        }
    }

    static func encode(_ p: UserPointer, into w: inout ByteWriter) {
        w.u8(p.pointerClass.rawValue | (p.accessibleBytes != nil ? 0x80 : 0))
        w.varint(p.pageOffset)
        if let a = p.accessibleBytes { w.varint(a) }
    }

    static func encode(_ b: BitmapBytes?, into w: inout ByteWriter) {
        guard let b else { w.u8(0); return }
        w.u8(1)
        w.varint(UInt64(b.segments.count))
        for s in b.segments {
            switch s {
            case .fill(let byte, let n): w.u8(0); w.u8(byte); w.varint(n)
            case .literal(let l): w.u8(1); w.blob(l)
            }
        }
    }

    static func encode(_ a: BitmapArg, into w: inout ByteWriter) {
        w.varint(a.pgsize)
        w.varint(a.size)
        encode(a.data, into: &w)
        encode(a.prior, into: &w)
    }

    static func encodeBody(_ body: EventBody, into w: inout ByteWriter) {
        switch body {
        case .open(let e):
            w.string(e.path); encode(e.result, into: &w)
        case .close(let e):
            w.svarint(Int64(e.fd)); encode(e.result, into: &w)
        case .getAPIVersion(let e):
            w.svarint(Int64(e.fd)); encode(e.result, into: &w)
        case .checkExtension(let e):
            w.svarint(Int64(e.fd)); w.varint(e.ext); encode(e.result, into: &w)
        case .setIOMMU(let e):
            w.svarint(Int64(e.fd)); w.varint(e.iommuType); encode(e.result, into: &w)
        case .getInfo(let e):
            w.svarint(Int64(e.fd)); w.varint(UInt64(e.argsz)); encode(e.result, into: &w)
            if let i = e.info {
                w.u8(1)
                w.varint(UInt64(i.argsz)); w.varint(UInt64(i.flags)); w.varint(i.iovaPgsizes)
                w.varint(UInt64(i.capOffset)); w.varint(UInt64(i.caps.count))
                for c in i.caps {
                    w.u16(c.id); w.u16(c.version); w.varint(UInt64(c.offset)); w.varint(UInt64(c.next))
                    switch c.body {
                    case .iovaRanges(let rs):
                        w.u8(1); w.varint(UInt64(rs.count))
                        for r in rs { w.varint(r.start); w.varint(r.end) }
                    case .migration(let flags, let hole, let pg, let max):
                        w.u8(2); w.varint(UInt64(flags)); w.u32(hole); w.varint(pg); w.varint(max)
                    case .dmaAvail(let n):
                        w.u8(3); w.varint(UInt64(n))
                    case .raw(let b):
                        w.u8(0); w.blob(b)
                    }
                }
            } else {
                w.u8(0)
            }
        case .mapDMA(let e):
            w.svarint(Int64(e.fd)); w.varint(UInt64(e.argsz)); w.varint(UInt64(e.flags))
            encode(e.vaddr, into: &w); w.varint(e.iova); w.varint(e.size); encode(e.result, into: &w)
        case .unmapDMA(let e):
            w.svarint(Int64(e.fd)); w.varint(UInt64(e.argsz)); w.varint(UInt64(e.flags))
            w.varint(e.iova); w.varint(e.size)
            if let b = e.bitmap { w.u8(1); encode(b, into: &w) } else { w.u8(0) }
            encode(e.result, into: &w)
            if let s = e.sizeOut { w.u8(1); w.varint(s) } else { w.u8(0) }
            encode(e.bitmapOut, into: &w)
        case .dirtyPages(let e):
            w.svarint(Int64(e.fd)); w.varint(UInt64(e.argsz)); w.varint(UInt64(e.flags))
            if let r = e.range {
                w.u8(1); w.varint(r.iova); w.varint(r.size); encode(r.bitmap, into: &w)
            } else {
                w.u8(0)
            }
            encode(e.result, into: &w)
            encode(e.bitmapOut, into: &w)
        case .groupGetStatus(let e):
            w.svarint(Int64(e.fd)); w.varint(UInt64(e.argsz)); encode(e.result, into: &w)
            if let f = e.flagsOut { w.u8(1); w.varint(UInt64(f)) } else { w.u8(0) }
        case .groupSetContainer(let e):
            w.svarint(Int64(e.fd)); w.svarint(Int64(e.container)); w.u8(e.kind.rawValue)
            encode(e.result, into: &w)
        case .groupUnsetContainer(let e):
            w.svarint(Int64(e.fd)); encode(e.result, into: &w)
        case .groupGetDeviceFD(let e):
            w.svarint(Int64(e.fd)); w.string(e.name); encode(e.result, into: &w)
        case .pin(let e):
            w.varint(UInt64(e.group)); w.varint(e.iova); w.varint(UInt64(e.npage)); w.varint(UInt64(e.prot))
            encode(e.result, into: &w)
        case .unpin(let e):
            w.varint(UInt64(e.group)); w.varint(e.iova); w.varint(UInt64(e.npage)); encode(e.result, into: &w)
        case .dmaRW(let e):
            w.varint(UInt64(e.group)); w.varint(e.iova); w.varint(e.length); w.bool(e.write)
            encode(e.result, into: &w)
        case .rawIoctl(let e):
            w.svarint(Int64(e.fd)); w.u8(e.fdKind.rawValue); w.varint(e.request); w.blob(e.argIn)
            encode(e.result, into: &w)
            if let o = e.argOut { w.u8(1); w.blob(o) } else { w.u8(0) }
        case .marker(let e):
            w.string(e.text)
        case .loss(let e):
            w.varint(e.count); w.string(e.reason)
        }
    }

    // MARK: Decoding

    /// Decodes one event payload of a known type. The caller has already
    /// split the record; `r` covers exactly its payload.
    /// Steps over a record not wanted (``RecordTypeSet``): its sequence,
    /// time and thread deltas are applied, its body left undecoded.
    mutating func advance(payload r: inout ByteReader) throws(DecodeError) {
        (prevSeq, prevTime, prevTid) = try decodeHeader(&r)
    }

    /// A record's sequence number, time and thread, from their deltas
    /// against the previous record (the state is not changed here).
    private func decodeHeader(_ r: inout ByteReader) throws(DecodeError) -> (seq: UInt64, time: UInt64, tid: UInt32) {
        let seq = prevSeq &+ 1 &+ UInt64(bitPattern: try r.svarint())
        let time = prevTime &+ UInt64(bitPattern: try r.svarint())
        let tidAt = r.offset
        let tidCode = try r.varint()
        guard tidCode != 0 else { return (seq, time, prevTid) }
        guard let t = UInt32(exactly: tidCode - 1) else { throw .corrupt(at: tidAt, "thread id out of range") }
        return (seq, time, t)
    }

    public mutating func decode(type: RecordType, payload r: inout ByteReader) throws(DecodeError) -> Event {
        let (seq, time, tid) = try decodeHeader(&r)
        let body = try Self.decodeBody(type, &r)
        if !r.isAtEnd { throw .corrupt(at: r.offset, "\(r.remaining) unexpected bytes after \(type.name) record") }
        prevSeq = seq
        prevTime = time
        prevTid = tid
        return Event(seq: seq, time: time, tid: tid, body)
    }

    static func decodeResult(_ r: inout ByteReader) throws(DecodeError) -> CallResult? {
        let at = r.offset
        switch try r.u8() {
        case 0: return nil
        case 1: return .ok(try r.svarint())
        case 2: return .error(try r.i32varint())
        case let t: throw .corrupt(at: at, "result tag \(t)")
        }
    }

    static func decodePointer(_ r: inout ByteReader) throws(DecodeError) -> UserPointer {
        let at = r.offset
        let tag = try r.u8()
        guard let cls = UserPointer.Class(rawValue: tag & 0x7F) else { throw .corrupt(at: at, "pointer class \(tag & 0x7F)") }
        let off = try r.varint()
        let acc: UInt64? = tag & 0x80 != 0 ? try r.varint() : nil
        return UserPointer(cls, pageOffset: off, accessibleBytes: acc)
    }

    static func decodeBitmap(_ r: inout ByteReader) throws(DecodeError) -> BitmapBytes? {
        let at = r.offset
        switch try r.u8() {
        case 0: return nil
        case 1: break
        case let t: throw .corrupt(at: at, "bitmap tag \(t)")
        }
        let n = try r.varint()
        guard n <= UInt64(r.remaining) else { throw .corrupt(at: at, "bitmap declares \(n) segments") }
        var b = BitmapBytes.Builder()
        for _ in 0..<n {
            let sat = r.offset
            switch try r.u8() {
            case 0:
                let byte = try r.u8()
                let count = try r.varint()
                guard count <= maxBitmapBytes, b.count + count <= maxBitmapBytes else {
                    throw .corrupt(at: sat, "bitmap larger than \(maxBitmapBytes) bytes")
                }
                b.append(byte, count: count)
            case 1:
                let l = try r.blob(limit: Int(maxBitmapBytes))
                guard b.count + UInt64(l.count) <= maxBitmapBytes else {
                    throw .corrupt(at: sat, "bitmap larger than \(maxBitmapBytes) bytes")
                }
                b.append(contentsOf: l)
            case let t:
                throw .corrupt(at: sat, "bitmap segment tag \(t)")
            }
        }
        return b.build()
    }

    static func decodeBitmapArg(_ r: inout ByteReader) throws(DecodeError) -> BitmapArg {
        let pgsize = try r.varint()
        let size = try r.varint()
        let data = try decodePointer(&r)
        let prior = try decodeBitmap(&r)
        return BitmapArg(pgsize: pgsize, size: size, data: data, prior: prior)
    }

    static func flag(_ r: inout ByteReader) throws(DecodeError) -> Bool {
        try r.bool()
    }

    static func decodeBody(_ type: RecordType, _ r: inout ByteReader) throws(DecodeError) -> EventBody {
        switch type {
        case .open:
            let path = try r.string(limit: 4096)
            return .open(Open(path: path, result: try decodeResult(&r)))
        case .close:
            let fd = try r.i32varint()
            return .close(Close(fd: fd, result: try decodeResult(&r)))
        case .getAPIVersion:
            let fd = try r.i32varint()
            return .getAPIVersion(GetAPIVersion(fd: fd, result: try decodeResult(&r)))
        case .checkExtension:
            let fd = try r.i32varint()
            let ext = try r.varint()
            return .checkExtension(CheckExtension(fd: fd, ext: ext, result: try decodeResult(&r)))
        case .setIOMMU:
            let fd = try r.i32varint()
            let t = try r.varint()
            return .setIOMMU(SetIOMMU(fd: fd, iommuType: t, result: try decodeResult(&r)))
        case .getInfo:
            let fd = try r.i32varint()
            let argsz = try r.u32varint()
            let result = try decodeResult(&r)
            var info: IOMMUInfo? = nil
            if try flag(&r) {
                let a = try r.u32varint(), f = try r.u32varint(), pg = try r.varint(), co = try r.u32varint()
                let nAt = r.offset
                let n = try r.varint()
                guard n <= UInt64(r.remaining) else { throw .corrupt(at: nAt, "\(n) capabilities") }
                var caps: [InfoCapability] = []
                for _ in 0..<n {
                    let id = try r.u16(), ver = try r.u16(), off = try r.u32varint(), next = try r.u32varint()
                    let kAt = r.offset
                    let body: InfoCapability.Body
                    switch try r.u8() {
                    case 0: body = .raw(try r.blob(limit: 1 << 16))
                    case 1:
                        let cAt = r.offset
                        let c = try r.varint()
                        guard c <= UInt64(r.remaining) else { throw .corrupt(at: cAt, "\(c) IOVA ranges") }
                        var rs: [IOVARange] = []
                        for _ in 0..<c { rs.append(IOVARange(start: try r.varint(), end: try r.varint())) }
                        body = .iovaRanges(rs)
                    case 2:
                        let fl = try r.u32varint(), hole = try r.u32(), pgb = try r.varint(), mx = try r.varint()
                        body = .migration(flags: fl, hole: hole, pgsizeBitmap: pgb, maxDirtyBitmapSize: mx)
                    case 3: body = .dmaAvail(try r.u32varint())
                    case let k: throw .corrupt(at: kAt, "capability kind \(k)")
                    }
                    caps.append(InfoCapability(id: id, version: ver, offset: off, next: next, body: body))
                }
                info = IOMMUInfo(argsz: a, flags: f, iovaPgsizes: pg, capOffset: co, caps: caps)
            }
            return .getInfo(GetInfo(fd: fd, argsz: argsz, result: result, info: info))
        case .mapDMA:
            let fd = try r.i32varint(), argsz = try r.u32varint(), flags = try r.u32varint()
            let vaddr = try decodePointer(&r)
            let iova = try r.varint(), size = try r.varint()
            return .mapDMA(MapDMA(fd: fd, argsz: argsz, flags: flags, vaddr: vaddr, iova: iova, size: size,
                                  result: try decodeResult(&r)))
        case .unmapDMA:
            let fd = try r.i32varint(), argsz = try r.u32varint(), flags = try r.u32varint()
            let iova = try r.varint(), size = try r.varint()
            let bitmap = try flag(&r) ? try decodeBitmapArg(&r) : nil
            let result = try decodeResult(&r)
            let sizeOut = try flag(&r) ? try r.varint() : nil
            let out = try decodeBitmap(&r)
            return .unmapDMA(UnmapDMA(fd: fd, argsz: argsz, flags: flags, iova: iova, size: size, bitmap: bitmap,
                                      result: result, sizeOut: sizeOut, bitmapOut: out))
        case .dirtyPages:
            let fd = try r.i32varint(), argsz = try r.u32varint(), flags = try r.u32varint()
            var range: DirtyRange? = nil
            if try flag(&r) {
                let iova = try r.varint(), size = try r.varint()
                range = DirtyRange(iova: iova, size: size, bitmap: try decodeBitmapArg(&r))
            }
            let result = try decodeResult(&r)
            let out = try decodeBitmap(&r)
            return .dirtyPages(DirtyPages(fd: fd, argsz: argsz, flags: flags, range: range, result: result,
                                          bitmapOut: out))
        case .groupGetStatus:
            let fd = try r.i32varint(), argsz = try r.u32varint()
            let result = try decodeResult(&r)
            let f = try flag(&r) ? try r.u32varint() : nil
            return .groupGetStatus(GroupGetStatus(fd: fd, argsz: argsz, result: result, flagsOut: f))
        case .groupSetContainer:
            let fd = try r.i32varint(), c = try r.i32varint()
            let kAt = r.offset
            guard let kind = GroupKind(rawValue: try r.u8()) else { throw .corrupt(at: kAt, "group kind") }
            return .groupSetContainer(GroupSetContainer(fd: fd, container: c, kind: kind, result: try decodeResult(&r)))
        case .groupUnsetContainer:
            let fd = try r.i32varint()
            return .groupUnsetContainer(GroupUnsetContainer(fd: fd, result: try decodeResult(&r)))
        case .groupGetDeviceFD:
            let fd = try r.i32varint()
            let name = try r.string(limit: 4096)
            return .groupGetDeviceFD(GroupGetDeviceFD(fd: fd, name: name, result: try decodeResult(&r)))
        case .pin:
            let g = try r.u32varint(), iova = try r.varint(), n = try r.u32varint(), prot = try r.u32varint()
            return .pin(Pin(group: g, iova: iova, npage: n, prot: prot, result: try decodeResult(&r)))
        case .unpin:
            let g = try r.u32varint(), iova = try r.varint(), n = try r.u32varint()
            return .unpin(Unpin(group: g, iova: iova, npage: n, result: try decodeResult(&r)))
        case .dmaRW:
            let g = try r.u32varint(), iova = try r.varint(), len = try r.varint(), write = try r.bool()
            return .dmaRW(DMARW(group: g, iova: iova, length: len, write: write, result: try decodeResult(&r)))
        case .rawIoctl:
            let fd = try r.i32varint()
            let kAt = r.offset
            guard let kind = FDKind(rawValue: try r.u8()) else { throw .corrupt(at: kAt, "fd kind") }
            let req = try r.varint()
            let argIn = try r.blob(limit: maxRawArgBytes)
            let result = try decodeResult(&r)
            let out = try flag(&r) ? try r.blob(limit: maxRawArgBytes) : nil
            return .rawIoctl(RawIoctl(fd: fd, fdKind: kind, request: req, argIn: argIn, result: result, argOut: out))
        case .marker:
            return .marker(Marker(try r.string()))
        case .loss:
            let n = try r.varint()
            return .loss(Loss(count: n, reason: try r.string()))
        case .frameEnd:
            throw .corrupt(at: r.offset, "frame_end is not an event")
        }
    }
}
