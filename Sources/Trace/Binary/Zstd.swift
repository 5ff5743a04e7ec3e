import CZstd

/// One zstd compression context, reused for every frame a writer closes.
/// Frames carry their content size and zstd's XXH64 content checksum.
final class ZstdCompressor {
    private let cctx: OpaquePointer

    init(level: Int32) throws(TraceError) {
        guard let c = ZSTD_createCCtx() else { throw .zstd("cannot create a compression context") }
        cctx = c
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level))
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))
        try check(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1))
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// Compresses `src` into one complete, independent frame.
    func compressFrame(_ src: [UInt8]) throws(TraceError) -> [UInt8] {
        let bound = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { o in
            src.withUnsafeBytes { i in ZSTD_compress2(cctx, o.baseAddress, bound, i.baseAddress, i.count) }
        }
        try check(n)
        out.removeSubrange(n...)
        return out
    }
}

@inline(__always)
func check(_ code: Int) throws(TraceError) {
    if ZSTD_isError(code) != 0 { throw .zstd(String(cString: ZSTD_getErrorName(code))) }
}

/// How decoding one zstd frame from a file ended.
enum ZstdFrameOutcome {
    /// The frame decoded and its checksum matched.
    case complete(content: [UInt8], compressedSize: Int, crc: UInt32)
    /// The file ended inside the frame.
    case truncated(decodedSoFar: Int)
    /// zstd rejected the data (bad block, checksum mismatch, too large).
    case corrupt(String)
}

/// Streaming frame decoder: input is read from the file in bounded chunks and
/// output grows only as data really decodes, up to `maxContent`, so a hostile
/// frame header cannot make it allocate more than that.
final class ZstdFrameDecoder {
    private let dctx: OpaquePointer
    static let chunk = 1 << 17

    init() throws(TraceError) {
        guard let d = ZSTD_createDCtx() else { throw .zstd("cannot create a decompression context") }
        dctx = d
        // Refuse windows larger than the writer ever uses (level ≤ 19: 8 MiB).
        _ = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27)
    }

    deinit { ZSTD_freeDCtx(dctx) }

    func decode(file: TraceFile, at offset: Int, maxContent: Int) -> ZstdFrameOutcome {
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only)
        var content = [UInt8]()
        var pos = offset
        var outChunk = [UInt8](repeating: 0, count: Self.chunk)
        var crc: UInt32 = 0
        while true {
            let input: [UInt8]
            do { input = try file.read(at: pos, count: Self.chunk) } catch { return .corrupt("\(error)") }
            if input.isEmpty { return .truncated(decodedSoFar: content.count) }
            var consumed = 0
            var frameDone = false
            var failure: String? = nil
            input.withUnsafeBytes { ib in
                var inBuf = ZSTD_inBuffer(src: ib.baseAddress, size: ib.count, pos: 0)
                outChunk.withUnsafeMutableBytes { ob in
                    while true {
                        var outBuf = ZSTD_outBuffer(dst: ob.baseAddress, size: ob.count, pos: 0)
                        let r = ZSTD_decompressStream(dctx, &outBuf, &inBuf)
                        if ZSTD_isError(r) != 0 {
                            failure = String(cString: ZSTD_getErrorName(r))
                            return
                        }
                        if outBuf.pos > 0 {
                            if content.count + outBuf.pos > maxContent {
                                failure = "frame decodes to more than \(maxContent) bytes"
                                return
                            }
                            content.append(contentsOf: UnsafeRawBufferPointer(rebasing: ob[0..<outBuf.pos]))
                        }
                        if r == 0 { frameDone = true; return }
                        // Need more input, and the output chunk was not filled: ask for more.
                        if inBuf.pos == inBuf.size && outBuf.pos < outBuf.size { return }
                    }
                }
                consumed = inBuf.pos
            }
            if let failure { return .corrupt(failure) }
            crc = input.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<consumed]), seed: crc) }
            pos += consumed
            if frameDone { return .complete(content: content, compressedSize: pos - offset, crc: crc) }
            if input.count < Self.chunk && consumed == input.count {
                // Everything up to EOF was consumed without reaching the frame end.
                if (try? file.read(at: pos, count: 1))?.isEmpty ?? true {
                    return .truncated(decodedSoFar: content.count)
                }
            }
        }
    }
}
