extension IOMMUInfo {
    /// Decodes a `struct vfio_iommu_type1_info` and its capability chain as
    /// the kernel wrote them into `bytes` (the caller's buffer, `argsz`
    /// long; `vfio_iommu_type1_get_info` fills it). The chain is followed
    /// by `next` while it stays inside the buffer; a loop or an
    /// out-of-range offset ends it. See `docs/kernel-rules.md#uapi-get-info`.
    public init(decoding bytes: [UInt8]) {
        typealias L = UAPI.IOMMUInfoLayout
        self.init(argsz: bytes.le32(at: L.argsz), flags: bytes.le32(at: L.flags), iovaPgsizes: bytes.le64(at: L.iovaPgsizes),
                  capOffset: bytes.le32(at: L.capOffset), caps: [])
        var at = Int(capOffset)
        var seen = Set<Int>()
        while at >= L.size, at + L.capHeaderSize <= bytes.count, !seen.contains(at) {
            seen.insert(at)
            let id = bytes.le16(at: at), version = bytes.le16(at: at + 2), next = bytes.le32(at: at + 4)
            let end = next > at ? min(Int(next), bytes.count) : bytes.count
            let body: InfoCapability.Body
            switch id {
            case VFIOUAPI.capIOVARange where at + L.iovaRanges <= end:
                let n = Int(bytes.le32(at: at + L.iovaRangeCount))
                var ranges: [IOVARange] = []
                var r = at + L.iovaRanges
                while ranges.count < n, r + L.iovaRangeSize <= bytes.count {
                    ranges.append(IOVARange(start: bytes.le64(at: r), end: bytes.le64(at: r + 8)))
                    r += L.iovaRangeSize
                }
                body = .iovaRanges(ranges)
            case VFIOUAPI.capMigration where at + L.migrationCapSize <= bytes.count:
                body = .migration(flags: bytes.le32(at: at + L.migrationFlags), hole: bytes.le32(at: at + L.migrationFlags + 4),
                                  pgsizeBitmap: bytes.le64(at: at + L.migrationPgsizeBitmap),
                                  maxDirtyBitmapSize: bytes.le64(at: at + L.migrationMaxDirtyBitmapSize))
            case VFIOUAPI.capDMAAvail where at + L.dmaAvail + 4 <= bytes.count:
                body = .dmaAvail(bytes.le32(at: at + L.dmaAvail))
            default:
                body = .raw(Array(bytes[(at + L.capHeaderSize)..<max(at + L.capHeaderSize, end)]))
            }
            caps.append(InfoCapability(id: id, version: version, offset: UInt32(at), next: next, body: body))
            if next == 0 { break }
            at = Int(next)
        }
    }
}
