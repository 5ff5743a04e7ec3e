import Trace

/// The per-mapping dirty bitmaps' life: `vfio_dma_bitmap_alloc` and
/// `vfio_dma_bitmap_free`, called by START and STOP
/// (`BitmapEngine+DirtyPages.swift`), by MAP while tracking and by UNMAP
/// (`docs/kernel-rules.md#bitmap-allocation`).
extension BitmapEngine {
    /// `vfio_dma_bitmap_alloc`: EINVAL past `DIRTY_BITMAP_PAGES_MAX`, ENOMEM
    /// past the engine's memory budget.
    func allocateBitmap(_ m: DMAMapping, _ t: Type1State) -> LinuxErrno? {
        let nbits = m.size >> t.pgshift
        guard nbits <= profile.pagesMax else { return .EINVAL }
        let bytes = kernelBitmapBytes(nbits)
        guard bitmapBytes + bytes <= bitmapMemoryLimit else { return .ENOMEM }
        bitmapBytes += bytes
        m.bitmap = DMABitmap(nbits: nbits)
        return nil
    }

    /// `vfio_dma_bitmap_free`. Before 5.17 it is `kfree`, which on a
    /// vmalloc'd bitmap (over `KMALLOC_MAX_SIZE`) corrupts the host
    /// (2bed2ced40c9, `docs/kernel-rules.md#delta-d7`).
    func freeBitmap(_ m: DMAMapping) {
        guard let b = m.bitmap else { return }
        let bytes = kernelBitmapBytes(b.nbits)
        if !profile.bitmapFreeIsKVFree && bytes > VFIOLimits.kmallocMaxSize {
            notes.append(.hazard("kfree() of a vmalloc'd \(bytes)-byte dirty bitmap (mapping at 0x\(String(m.iova, radix: 16))): host memory corruption before 5.17 (2bed2ced40c9)"))
        }
        bitmapBytes -= bytes
        m.bitmap = nil
    }

    /// Bytes the kernel allocates for a bitmap of `nbits`: the bitmap plus
    /// the scratch u64 (none in v16).
    func kernelBitmapBytes(_ nbits: UInt64) -> UInt64 {
        VFIOLimits.dirtyBitmapBytes(nbits) + (profile.queryRange == .exactSingleMapping ? 0 : 8)
    }
}
