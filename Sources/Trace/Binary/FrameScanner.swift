/// Walks a trace file frame by frame after its header, decoding each data
/// frame on its own. Damage does not stop it: after a frame that does not
/// decode it looks for the next frame magic and carries on, so every intact
/// frame of a damaged file is found.
public struct FrameScanner {
    public enum Item {
        /// A data frame that decoded (its records may still be damaged: see
        /// ``FrameContent/Records/damage``).
        case data(offset: Int, compressedSize: Int, crc: UInt32, content: FrameContent)
        /// The seek index frame.
        case index(offset: Int, length: Int)
        /// A skippable frame of a kind this version does not know.
        case skippable(offset: Int, length: Int, magic: UInt32)
        /// Bytes that could not be decoded, up to the next frame found.
        case damaged(offset: Int, length: Int, reason: String)
        /// The file ends inside a frame.
        case truncated(offset: Int, length: Int, reason: String)
    }

    /// The largest decompressed data frame accepted (two full 256 MiB
    /// bitmaps plus slack); a frame claiming more is treated as corrupt.
    public static let maxFrameContent = 600 << 20

    static let zstdMagic: UInt32 = 0xFD2F_B528

    let file: TraceFile
    public private(set) var offset: Int
    private let decoder: ZstdFrameDecoder

    public init(file: TraceFile, offset: Int) throws(TraceError) {
        self.file = file
        self.offset = offset
        self.decoder = try ZstdFrameDecoder()
    }

    static func isSkippable(_ m: UInt32) -> Bool { m & 0xFFFF_FFF0 == 0x184D_2A50 }

    public mutating func next() throws(TraceError) -> Item? {
        let start = offset
        guard start < file.size else { return nil }
        guard let magic = try file.u32(at: start) else {
            offset = file.size
            return .truncated(offset: start, length: file.size - start, reason: "\(file.size - start) stray bytes")
        }
        if Self.isSkippable(magic) {
            guard let len = try file.u32(at: start + 4) else {
                offset = file.size
                return .truncated(offset: start, length: file.size - start, reason: "skippable frame header cut short")
            }
            let end = start + 8 + Int(len)
            if end > file.size {
                // Either a frame cut short or a garbage length: resynchronise.
                if let sync = try findSync(after: start) {
                    offset = sync
                    return .damaged(offset: start, length: sync - start, reason: "skippable frame length \(len) runs past the next frame")
                }
                offset = file.size
                return .truncated(offset: start, length: file.size - start, reason: "skippable frame of \(len) bytes cut short")
            }
            offset = end
            if magic == SeekIndex.skippableMagic { return .index(offset: start, length: end - start) }
            return .skippable(offset: start, length: end - start, magic: magic)
        }
        if magic == Self.zstdMagic {
            switch decoder.decode(file: file, at: start, maxContent: Self.maxFrameContent) {
            case .complete(let content, let size, let crc):
                offset = start + size
                return .data(offset: start, compressedSize: size, crc: crc, content: FrameContent.parse(content))
            case .truncated(let got):
                if let sync = try findSync(after: start) {
                    offset = sync
                    return .damaged(offset: start, length: sync - start, reason: "frame incomplete before the next frame")
                }
                offset = file.size
                return .truncated(offset: start, length: file.size - start,
                                  reason: "last frame incomplete (\(got) bytes decoded before the end of the file)")
            case .corrupt(let why):
                let sync = try findSync(after: start) ?? file.size
                offset = sync
                return .damaged(offset: start, length: sync - start, reason: why)
            }
        }
        let sync = try findSync(after: start) ?? file.size
        offset = sync
        return .damaged(offset: start, length: sync - start, reason: "no frame starts here")
    }

    /// The offset of the next zstd or vfiotrace skippable frame magic after `start`.
    func findSync(after start: Int) throws(TraceError) -> Int? {
        var pos = start + 1
        let chunk = 1 << 16
        while pos + 4 <= file.size {
            let b = try file.read(at: pos, count: chunk + 3)
            if b.count < 4 { return nil }
            for i in 0...(b.count - 4) {
                let m = UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
                if m == Self.zstdMagic || m == SeekIndex.skippableMagic || m == TraceHeader.skippableMagic {
                    return pos + i
                }
            }
            pos += chunk
        }
        return nil
    }
}
