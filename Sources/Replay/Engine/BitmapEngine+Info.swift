import Trace

/// `VFIO_IOMMU_GET_INFO` (`vfio_iommu_type1_get_info`, `docs/kernel-rules.md#uapi-get-info`,
/// rule `info.migration-cap`).
extension BitmapEngine {
    /// The capability chain is MIGRATION, DMA_AVAIL (5.10+), IOVA_RANGE
    /// (only with an IOVA list). Too small an argsz gets the needed size
    /// back and no capabilities (`cap_offset` 0).
    func getInfo(_ t: Type1State, argsz: UInt32) -> (CallResult, IOMMUInfo?) {
        let headerSize: UInt32 = 16 // offsetofend(iova_pgsizes)
        guard argsz >= headerSize else { return (.error(.EINVAL), nil) }
        let infoSize = VFIOUAPI.iommuInfoSize
        var caps: [(id: UInt16, size: UInt32, body: InfoCapability.Body)] = []
        caps.append((profile.migrationCapID, 32,
                     .migration(flags: 0, hole: 0, pgsizeBitmap: t.pgsize,
                                maxDirtyBitmapSize: VFIOLimits.dirtyBitmapSizeMax)))
        if profile.dmaAvailCap { caps.append((VFIOUAPI.capDMAAvail, 12, .dmaAvail(t.dmaAvail))) }
        if !t.iovaRanges.isEmpty {
            caps.append((VFIOUAPI.capIOVARange, 16 + 16 * UInt32(t.iovaRanges.count),
                         .iovaRanges(t.iovaRanges.map { IOVARange(start: $0.lowerBound, end: $0.upperBound) })))
        }
        if !profile.migrationCapHoleZeroed { notes.append(.unspecified(.migrationCapHole)) }
        // Offsets as vfio_info_cap_add lays them out (8-aligned from 6.6).
        var offsets: [UInt32] = []
        var total: UInt32 = 0
        for c in caps {
            offsets.append(infoSize + total)
            total += profile.alignedCapabilities ? (c.size + 7) & ~7 : c.size
        }
        var info = IOMMUInfo(argsz: argsz, flags: 1 | 2, iovaPgsizes: t.pgsizeBitmap, capOffset: 0, caps: [])
        if argsz < infoSize + total {
            info.argsz = infoSize + total
        } else {
            info.capOffset = infoSize
            info.caps = caps.enumerated().map { i, c in
                InfoCapability(id: c.id, version: 1, offset: offsets[i],
                               next: i + 1 < caps.count ? offsets[i + 1] : 0, body: c.body)
            }
        }
        return (.ok(0), info)
    }
}
